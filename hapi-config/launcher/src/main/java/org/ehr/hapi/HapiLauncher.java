package org.ehr.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.flyway.FlywayAutoConfiguration;
import org.springframework.boot.autoconfigure.orm.jpa.HibernateJpaAutoConfiguration;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;
import org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration;
import org.springframework.context.annotation.Import;

/**
 * Runs a HAPI FHIR JPA (R4) server on Spring Boot, wired from HAPI's documented Spring
 * configuration classes and configured with the starter-compatible {@code hapi.fhir.*} keys of
 * {@code hapi-config/application.yaml}.
 */
@SpringBootApplication(
		exclude = {
			// We build HAPI's own entity-manager factory (persistence unit HAPI_PU).
			HibernateJpaAutoConfiguration.class,
			// HAPI owns its schema and its scheduler; nothing here uses these.
			FlywayAutoConfiguration.class,
			QuartzAutoConfiguration.class,
			ElasticsearchRestClientAutoConfiguration.class,
			ThymeleafAutoConfiguration.class
		})
@EnableConfigurationProperties(HapiProperties.class)
@Import({
	ThreadPoolFactoryConfig.class,
	JpaR4Config.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionSubmitterConfig.class,
	SubscriptionProcessorConfig.class,
	SubscriptionChannelConfig.class,
	StorageConfig.class,
	FhirServletConfig.class
})
public class HapiLauncher {

	public static void main(String[] args) {
		SpringApplication.run(HapiLauncher.class, args);
	}
}
