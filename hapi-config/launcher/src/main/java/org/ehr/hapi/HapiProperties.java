package org.ehr.hapi;

import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * The subset of the hapi-fhir-jpaserver-starter's {@code hapi.fhir.*} keys this launcher honours.
 * Names keep the starter's snake_case spelling so one application.yaml serves both the Docker
 * image and this launcher.
 */
@ConfigurationProperties(prefix = "hapi.fhir")
public class HapiProperties {

	private String server_address;
	private int default_page_size = 20;
	private int max_page_size = 200;
	private long reuse_cached_search_results_millis = 60000L;
	private long retain_cached_searches_mins = 60L;
	private boolean allow_external_references = false;
	private boolean allow_multiple_delete = false;
	private boolean allow_cascading_deletes = false;
	private boolean enforce_referential_integrity_on_write = true;
	private boolean enforce_referential_integrity_on_delete = true;
	private boolean expunge_enabled = false;
	private boolean delete_expunge_enabled = false;
	private boolean bulk_export_enabled = true;
	private int bulk_export_file_retention_period_hours = 2;
	private boolean narrative_enabled = false;
	private JpaStorageSettings.ClientIdStrategyEnum client_id_strategy =
			JpaStorageSettings.ClientIdStrategyEnum.NOT_ALLOWED;
	private JpaStorageSettings.IdStrategyEnum server_id_strategy = JpaStorageSettings.IdStrategyEnum.UUID;
	private Partitioning partitioning;
	private Subscription subscription = new Subscription();

	public static class Partitioning {
		private boolean request_tenant_partitioning_mode = true;
		private boolean allow_references_across_partitions = false;
		private boolean partitioning_include_in_search_hashes = false;
		// Conditional-create identity per partition: one tenant's identifiers must neither block
		// nor reveal another's (HAPI's default tracks them across all partitions).
		private boolean conditional_create_duplicate_identifiers_enabled = true;

		public boolean getConditional_create_duplicate_identifiers_enabled() {
			return conditional_create_duplicate_identifiers_enabled;
		}

		public void setConditional_create_duplicate_identifiers_enabled(boolean v) {
			conditional_create_duplicate_identifiers_enabled = v;
		}

		public boolean getRequest_tenant_partitioning_mode() {
			return request_tenant_partitioning_mode;
		}

		public void setRequest_tenant_partitioning_mode(boolean v) {
			request_tenant_partitioning_mode = v;
		}

		public boolean getAllow_references_across_partitions() {
			return allow_references_across_partitions;
		}

		public void setAllow_references_across_partitions(boolean v) {
			allow_references_across_partitions = v;
		}

		public boolean getPartitioning_include_in_search_hashes() {
			return partitioning_include_in_search_hashes;
		}

		public void setPartitioning_include_in_search_hashes(boolean v) {
			partitioning_include_in_search_hashes = v;
		}
	}

	public static class Subscription {
		private boolean resthook_enabled = false;
		private Long polling_interval_ms;
		private boolean immediately_queued = false;
		private Long submission_interval_ms;

		public Long getSubmission_interval_ms() {
			return submission_interval_ms;
		}

		public void setSubmission_interval_ms(Long v) {
			submission_interval_ms = v;
		}

		public boolean getImmediately_queued() {
			return immediately_queued;
		}

		public void setImmediately_queued(boolean v) {
			immediately_queued = v;
		}

		public boolean getResthook_enabled() {
			return resthook_enabled;
		}

		public void setResthook_enabled(boolean v) {
			resthook_enabled = v;
		}

		public Long getPolling_interval_ms() {
			return polling_interval_ms;
		}

		public void setPolling_interval_ms(Long v) {
			polling_interval_ms = v;
		}
	}

	public String getServer_address() {
		return server_address;
	}

	public void setServer_address(String v) {
		server_address = v;
	}

	public int getDefault_page_size() {
		return default_page_size;
	}

	public void setDefault_page_size(int v) {
		default_page_size = v;
	}

	public int getMax_page_size() {
		return max_page_size;
	}

	public void setMax_page_size(int v) {
		max_page_size = v;
	}

	public long getReuse_cached_search_results_millis() {
		return reuse_cached_search_results_millis;
	}

	public void setReuse_cached_search_results_millis(long v) {
		reuse_cached_search_results_millis = v;
	}

	public long getRetain_cached_searches_mins() {
		return retain_cached_searches_mins;
	}

	public void setRetain_cached_searches_mins(long v) {
		retain_cached_searches_mins = v;
	}

	public boolean getAllow_external_references() {
		return allow_external_references;
	}

	public void setAllow_external_references(boolean v) {
		allow_external_references = v;
	}

	public boolean getAllow_multiple_delete() {
		return allow_multiple_delete;
	}

	public void setAllow_multiple_delete(boolean v) {
		allow_multiple_delete = v;
	}

	public boolean getAllow_cascading_deletes() {
		return allow_cascading_deletes;
	}

	public void setAllow_cascading_deletes(boolean v) {
		allow_cascading_deletes = v;
	}

	public boolean getEnforce_referential_integrity_on_write() {
		return enforce_referential_integrity_on_write;
	}

	public void setEnforce_referential_integrity_on_write(boolean v) {
		enforce_referential_integrity_on_write = v;
	}

	public boolean getEnforce_referential_integrity_on_delete() {
		return enforce_referential_integrity_on_delete;
	}

	public void setEnforce_referential_integrity_on_delete(boolean v) {
		enforce_referential_integrity_on_delete = v;
	}

	public boolean getExpunge_enabled() {
		return expunge_enabled;
	}

	public void setExpunge_enabled(boolean v) {
		expunge_enabled = v;
	}

	public boolean getDelete_expunge_enabled() {
		return delete_expunge_enabled;
	}

	public void setDelete_expunge_enabled(boolean v) {
		delete_expunge_enabled = v;
	}

	public boolean getBulk_export_enabled() {
		return bulk_export_enabled;
	}

	public void setBulk_export_enabled(boolean v) {
		bulk_export_enabled = v;
	}

	public int getBulk_export_file_retention_period_hours() {
		return bulk_export_file_retention_period_hours;
	}

	public void setBulk_export_file_retention_period_hours(int v) {
		bulk_export_file_retention_period_hours = v;
	}

	public boolean getNarrative_enabled() {
		return narrative_enabled;
	}

	public void setNarrative_enabled(boolean v) {
		narrative_enabled = v;
	}

	public JpaStorageSettings.ClientIdStrategyEnum getClient_id_strategy() {
		return client_id_strategy;
	}

	public void setClient_id_strategy(JpaStorageSettings.ClientIdStrategyEnum v) {
		client_id_strategy = v;
	}

	public JpaStorageSettings.IdStrategyEnum getServer_id_strategy() {
		return server_id_strategy;
	}

	public void setServer_id_strategy(JpaStorageSettings.IdStrategyEnum v) {
		server_id_strategy = v;
	}

	public Partitioning getPartitioning() {
		return partitioning;
	}

	public void setPartitioning(Partitioning v) {
		partitioning = v;
	}

	public Subscription getSubscription() {
		return subscription;
	}

	public void setSubscription(Subscription v) {
		subscription = v;
	}
}
