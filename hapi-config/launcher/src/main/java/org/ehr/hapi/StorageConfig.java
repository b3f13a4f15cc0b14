package org.ehr.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.IDaoRegistry;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.config.util.ResourceCountCacheUtil;
import ca.uhn.fhir.jpa.dao.FulltextSearchSvcImpl;
import ca.uhn.fhir.jpa.dao.IFulltextSearchSvc;
import ca.uhn.fhir.jpa.dao.search.HSearchSortHelperImpl;
import ca.uhn.fhir.jpa.dao.search.IHSearchSortHelper;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.PartitionSettings.CrossPartitionReferenceMode;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.provider.DaoRegistryResourceSupportedSvc;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.search.IStaleSearchDeletingSvc;
import ca.uhn.fhir.jpa.search.StaleSearchDeletingSvcImpl;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.util.ResourceCountCache;
import ca.uhn.fhir.rest.api.IResourceSupportedSvc;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import java.util.Map;
import java.util.Properties;
import javax.sql.DataSource;
import org.hl7.fhir.dstu2.model.Subscription.SubscriptionChannelType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Lazy;
import org.springframework.context.annotation.Primary;
import org.springframework.core.env.Environment;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.transaction.annotation.EnableTransactionManagement;

/** Storage-side beans HAPI's JPA configuration expects the embedding application to supply. */
@Configuration
@EnableTransactionManagement
public class StorageConfig {

	private static final Logger LOG = LoggerFactory.getLogger(StorageConfig.class);

	/** Hibernate settings applied unless spring.jpa.properties.* overrides them. */
	private static final Map<String, String> HIBERNATE_DEFAULTS = Map.of(
			// Always explicit: dialect detection trips over distribution version strings.
			"hibernate.dialect", "ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect",
			"hibernate.hbm2ddl.auto", "update",
			"hibernate.search.enabled", "false",
			"hibernate.jdbc.batch_size", "20",
			"hibernate.order_inserts", "true",
			"hibernate.order_updates", "true",
			"hibernate.format_sql", "false",
			"hibernate.show_sql", "false");

	@Bean
	public JpaStorageSettings jpaStorageSettings(HapiProperties props) {
		JpaStorageSettings settings = new JpaStorageSettings();
		settings.setResourceClientIdStrategy(props.getClient_id_strategy());
		settings.setResourceServerIdStrategy(props.getServer_id_strategy());
		settings.setReuseCachedSearchResultsForMillis(props.getReuse_cached_search_results_millis());
		settings.setExpireSearchResultsAfterMillis(props.getRetain_cached_searches_mins() * 60_000L);
		settings.setFetchSizeDefaultMaximum(props.getMax_page_size());
		settings.setAllowExternalReferences(props.getAllow_external_references());
		settings.setAllowMultipleDelete(props.getAllow_multiple_delete());
		settings.setEnforceReferentialIntegrityOnWrite(props.getEnforce_referential_integrity_on_write());
		settings.setEnforceReferentialIntegrityOnDelete(props.getEnforce_referential_integrity_on_delete());
		settings.setExpungeEnabled(props.getExpunge_enabled());
		settings.setDeleteExpungeEnabled(props.getDelete_expunge_enabled());
		settings.setBulkExportFileRetentionPeriodHours(props.getBulk_export_file_retention_period_hours());
		// Gated batch jobs (bulk export) move to their next step as soon as one finishes,
		// instead of waiting for the once-a-minute maintenance pass.
		settings.setJobFastTrackingEnabled(true);
		LOG.info(
				"HAPI storage: client ids {}, server ids {}, search-cache reuse {} ms",
				props.getClient_id_strategy(),
				props.getServer_id_strategy(),
				props.getReuse_cached_search_results_millis());
		return settings;
	}

	@Bean
	public PartitionSettings partitionSettings(HapiProperties props) {
		PartitionSettings settings = new PartitionSettings();
		HapiProperties.Partitioning partitioning = props.getPartitioning();
		if (partitioning != null) {
			settings.setPartitioningEnabled(true);
			settings.setIncludePartitionInSearchHashes(partitioning.getPartitioning_include_in_search_hashes());
			settings.setConditionalCreateDuplicateIdentifiersEnabled(
					partitioning.getConditional_create_duplicate_identifiers_enabled());
			settings.setAllowReferencesAcrossPartitions(
					partitioning.getAllow_references_across_partitions()
							? CrossPartitionReferenceMode.ALLOWED_UNQUALIFIED
							: CrossPartitionReferenceMode.NOT_ALLOWED);
			LOG.info("HAPI partitioning enabled (URL tenants)");
		}
		return settings;
	}

	/** Static: a post-processor must exist before the beans it adjusts. */
	@Bean
	public static SubscriptionSubmissionInterval subscriptionSubmissionInterval() {
		return new SubscriptionSubmissionInterval();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings(HapiProperties props) {
		SubscriptionSettings settings = new SubscriptionSettings();
		HapiProperties.Subscription subscription = props.getSubscription();
		if (subscription != null && subscription.getResthook_enabled()) {
			settings.addSupportedSubscriptionType(SubscriptionChannelType.RESTHOOK);
			LOG.info("REST-hook subscriptions enabled");
		}
		if (subscription != null && subscription.getPolling_interval_ms() != null) {
			settings.setSubscriptionIntervalInMs(subscription.getPolling_interval_ms());
		}
		if (subscription != null && subscription.getImmediately_queued()) {
			// A change is submitted for matching right after its commit (a failed submission is
			// persisted and retried by HAPI's scheduler); otherwise matching waits for the next
			// 5 s run of that scheduler.
			settings.setSubscriptionChangeQueuedImmediately(true);
			LOG.info("Subscription changes queued immediately");
		}
		return settings;
	}

	@Primary
	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			DataSource dataSource,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			Environment environment) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(dataSource);
		Properties jpaProperties = new Properties();
		jpaProperties.putAll(HIBERNATE_DEFAULTS);
		Binder.get(environment)
				.bind("spring.jpa.properties", Bindable.mapOf(String.class, String.class))
				.ifBound(jpaProperties::putAll);
		factory.setJpaProperties(jpaProperties);
		return factory;
	}

	@Primary
	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		JpaTransactionManager manager = new JpaTransactionManager();
		manager.setEntityManagerFactory(entityManagerFactory);
		return manager;
	}

	@Bean
	public IFulltextSearchSvc fullTextSearchSvc() {
		return new FulltextSearchSvcImpl();
	}

	@Bean
	public IHSearchSortHelper hSearchSortHelper(ISearchParamRegistry searchParamRegistry) {
		return new HSearchSortHelperImpl(searchParamRegistry);
	}

	@Bean
	public IStaleSearchDeletingSvc staleSearchDeletingSvc() {
		return new StaleSearchDeletingSvcImpl();
	}

	@Bean
	public DatabaseBackedPagingProvider databaseBackedPagingProvider(HapiProperties props) {
		DatabaseBackedPagingProvider provider = new DatabaseBackedPagingProvider();
		provider.setDefaultPageSize(props.getDefault_page_size());
		provider.setMaximumPageSize(props.getMax_page_size());
		return provider;
	}

	@Bean
	public IResourceSupportedSvc resourceSupportedSvc(IDaoRegistry daoRegistry) {
		return new DaoRegistryResourceSupportedSvc(daoRegistry);
	}

	@Bean(name = "myResourceCountsCache")
	public ResourceCountCache resourceCountsCache(IFhirSystemDao<?, ?> systemDao) {
		return ResourceCountCacheUtil.newResourceCountCache(systemDao);
	}

	/** Email subscriptions are not offered; deliveries of that type are dropped with a warning. */
	@Bean
	public IEmailSender emailSender() {
		return details -> LOG.warn("Email subscription delivery is not configured; message dropped");
	}

	@Lazy
	@Bean
	public IBinaryStorageSvc binaryStorageSvc() {
		return new DatabaseBinaryContentStorageSvcImpl();
	}
}
