output "kms_key_arn" {
  description = "The KMS key encrypting data at rest."
  value       = aws_kms_key.this.arn
}

output "app_secret_arn" {
  description = "The Secrets Manager secret holding the API's own secrets."
  value       = aws_secretsmanager_secret.app.arn
}

output "app_secret_name" {
  description = "The app secret's name (what the in-cluster secret sync reads)."
  value       = aws_secretsmanager_secret.app.name
}

output "redis_auth_token" {
  description = "The Redis AUTH token (also in the app secret)."
  value       = random_password.redis_auth_token.result
  sensitive   = true
}
