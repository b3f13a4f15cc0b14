output "release_name" {
  description = "The ehr-platform Helm release."
  value       = helm_release.platform.name
}

output "namespace" {
  description = "The namespace the platform runs in."
  value       = helm_release.platform.namespace
}

output "secret_name" {
  description = "The Kubernetes Secret the chart reads (synced from Secrets Manager)."
  value       = local.platform_secret_name
}
