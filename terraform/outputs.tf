output "cluster_name" {
  description = "The EKS cluster (aws eks update-kubeconfig --name <this>)."
  value       = module.cluster.name
}

output "cluster_endpoint" {
  description = "The Kubernetes API server."
  value       = module.cluster.endpoint
}

output "app_database_address" {
  description = "Our PostgreSQL instance (private)."
  value       = module.app_database.address
}

output "hapi_database_address" {
  description = "HAPI's PostgreSQL instance (private)."
  value       = module.hapi_database.address
}

output "redis_endpoint" {
  description = "The Redis primary endpoint (TLS, private)."
  value       = module.redis.primary_endpoint
}

output "app_secret_arn" {
  description = "The Secrets Manager secret with the API's own secrets."
  value       = module.secrets.app_secret_arn
}

output "platform_namespace" {
  description = "The namespace the platform runs in (kubectl -n <this>)."
  value       = module.platform.namespace
}
