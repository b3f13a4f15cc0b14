output "address" {
  description = "The instance's private DNS name."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "The PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "The database on the instance."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "The Secrets Manager secret (username, password) RDS keeps and rotates for the master user."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
