package org.ehr.hapi;

import ca.uhn.fhir.batch2.api.IJobInstance;
import ca.uhn.fhir.batch2.model.JobInstance;
import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.interceptor.model.RequestPartitionId;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.api.server.SystemRequestDetails;
import ca.uhn.fhir.rest.api.server.bulk.BulkExportJobParameters;

/**
 * Binds a bulk-export job's background work to the partition it was started in.
 *
 * <p>With URL tenant partitioning, HAPI identifies a request's partition through the
 * RequestTenantPartitionInterceptor registered on the RestfulServer. Bulk export runs in batch
 * job steps that are not REST requests: their SystemRequestDetails carry no tenant, no
 * interceptor answers the partition pointcuts and the job fails with HAPI-1319
 * (hapi-fhir#6665). The job parameters already hold the partition resolved (and authorised)
 * at kick-off, so each step's request details get exactly that partition; a job without one
 * is left alone and fails closed.</p>
 *
 * <p>Registered with the global interceptor service (batch steps do not see RestfulServer
 * interceptors).</p>
 */
@Interceptor
public class BulkExportPartitionBinding {

	static final String BULK_EXPORT_JOB = "BULK_EXPORT";

	@Hook(Pointcut.STORAGE_BATCH_TASK_NEW_REQUEST_DETAILS)
	public void bindJobPartition(IJobInstance theInstance, RequestDetails theRequestDetails) {
		if (!(theRequestDetails instanceof SystemRequestDetails details)
				|| details.getRequestPartitionId() != null
				|| !(theInstance instanceof JobInstance job)
				|| !BULK_EXPORT_JOB.equals(job.getJobDefinitionId())) {
			return;
		}
		RequestPartitionId partition =
				job.getParameters(BulkExportJobParameters.class).getPartitionIdForSecurity();
		if (partition != null) {
			details.setRequestPartitionId(partition);
		}
	}
}
