output "primary_endpoint" {
  description = "The primary's DNS name (follows failover)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "The Redis port (TLS)."
  value       = aws_elasticache_replication_group.this.port
}
