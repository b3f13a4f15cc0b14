package org.ehr.hapi;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.DaoRegistry;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.interceptor.CascadingDeleteInterceptor;
import ca.uhn.fhir.jpa.delete.ThreadSafeResourceDeleterSvc;
import ca.uhn.fhir.interceptor.api.IInterceptorBroadcaster;
import ca.uhn.fhir.interceptor.api.IInterceptorService;
import ca.uhn.fhir.jpa.partition.PartitionManagementProvider;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.SubscriptionTriggeringProvider;
import ca.uhn.fhir.jpa.provider.ValueSetOperationProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.narrative2.NullNarrativeGenerator;
import ca.uhn.fhir.narrative.DefaultThymeleafNarrativeGenerator;
import ca.uhn.fhir.rest.server.HardcodedServerAddressStrategy;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.partition.RequestTenantPartitionInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.tenant.UrlBaseTenantIdentificationStrategy;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.springframework.beans.factory.config.AutowireCapableBeanFactory;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The FHIR REST endpoint: HAPI's RestfulServer mounted at /fhir/*. */
@Configuration
public class FhirServletConfig {

	@Bean
	public RestfulServer restfulServer(
			IFhirSystemDao<?, ?> systemDao,
			HapiProperties props,
			DaoRegistry daoRegistry,
			IJpaSystemProvider systemProvider,
			ResourceProviderFactory resourceProviderFactory,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			ValueSetOperationProvider valueSetOperationProvider,
			SubscriptionTriggeringProvider subscriptionTriggeringProvider,
			BulkDataExportProvider bulkDataExportProvider,
			PartitionManagementProvider partitionManagementProvider,
			IInterceptorBroadcaster interceptorBroadcaster,
			ThreadSafeResourceDeleterSvc resourceDeleterSvc,
			IInterceptorService interceptorService,
			RequestTenantPartitionInterceptor tenantPartitionInterceptor) {
		RestfulServer server = new RestfulServer(systemDao.getContext());
		systemDao
				.getContext()
				.setNarrativeGenerator(
						props.getNarrative_enabled()
								? new DefaultThymeleafNarrativeGenerator()
								: new NullNarrativeGenerator());

		server.registerProviders(resourceProviderFactory.createProviders());
		server.registerProvider(systemProvider);
		server.registerProvider(valueSetOperationProvider);
		server.registerProvider(subscriptionTriggeringProvider);

		JpaCapabilityStatementProvider capabilities = new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport);
		capabilities.setImplementationDescription("EHR platform HAPI FHIR R4 server");
		server.setServerConformanceProvider(capabilities);
		server.setPagingProvider(pagingProvider);
		server.setDefaultResponseEncoding(ca.uhn.fhir.rest.api.EncodingEnum.JSON);

		String serverAddress = props.getServer_address();
		if (serverAddress != null && !serverAddress.isBlank()) {
			server.setServerAddressStrategy(new HardcodedServerAddressStrategy(serverAddress));
		}
		if (props.getBulk_export_enabled()) {
			server.registerProvider(bulkDataExportProvider);
		}
		if (props.getAllow_cascading_deletes()) {
			server.registerInterceptor(new CascadingDeleteInterceptor(
					systemDao.getContext(), daoRegistry, interceptorBroadcaster, resourceDeleterSvc));
		}
		if (props.getPartitioning() != null && props.getPartitioning().getRequest_tenant_partitioning_mode()) {
			server.registerInterceptor(tenantPartitionInterceptor);
			server.setTenantIdentificationStrategy(new UrlBaseTenantIdentificationStrategy());
			server.registerProvider(partitionManagementProvider);
			// Batch steps (bulk export) are not REST requests: bind them globally.
			interceptorService.registerInterceptor(new BulkExportPartitionBinding());
		}
		return server;
	}

	/** A bean (not {@code new}) so Spring injects its PartitionSettings. */
	@Bean
	public RequestTenantPartitionInterceptor requestTenantPartitionInterceptor() {
		return new RequestTenantPartitionInterceptor();
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServletRegistration(
			RestfulServer restfulServer, AutowireCapableBeanFactory beanFactory) {
		beanFactory.autowireBean(restfulServer);
		ServletRegistrationBean<RestfulServer> registration =
				new ServletRegistrationBean<>(restfulServer, "/fhir/*");
		registration.setLoadOnStartup(1);
		return registration;
	}
}
