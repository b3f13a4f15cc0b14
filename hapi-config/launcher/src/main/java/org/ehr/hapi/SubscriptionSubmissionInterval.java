package org.ehr.hapi;

import ca.uhn.fhir.jpa.subscription.async.AsyncResourceModifiedProcessingSchedulerSvc;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.context.EnvironmentAware;
import org.springframework.core.env.Environment;

/**
 * How often HAPI submits persisted resource changes to subscription matching.
 *
 * <p>HAPI 8.8 persists every change for subscription matching and submits the persisted ones
 * from a scheduled job every 5 s ({@code AsyncResourceModifiedProcessingSchedulerSvc}); the
 * {@code immediately_queued} setting does not shorten that on this version (measured: 0-5 s from
 * write to REST-hook delivery). The platform turns FHIR changes into realtime events (ADR 0027),
 * so {@code hapi.fhir.subscription.submission_interval_ms} sets the job's interval before it is
 * scheduled. Unset or 0: HAPI's default.</p>
 */
public class SubscriptionSubmissionInterval implements BeanPostProcessor, EnvironmentAware {

	private static final Logger LOG = LoggerFactory.getLogger(SubscriptionSubmissionInterval.class);
	static final String PROPERTY = "hapi.fhir.subscription.submission_interval_ms";

	private long intervalMillis;

	@Override
	public void setEnvironment(Environment theEnvironment) {
		intervalMillis = theEnvironment.getProperty(PROPERTY, Long.class, 0L);
	}

	@Override
	public Object postProcessBeforeInitialization(Object theBean, String theBeanName) {
		if (intervalMillis > 0 && theBean instanceof AsyncResourceModifiedProcessingSchedulerSvc scheduler) {
			scheduler.mySubmissionIntervalInMilliSeconds = intervalMillis;
			LOG.info("Subscription submissions every {} ms", intervalMillis);
		}
		return theBean;
	}
}
