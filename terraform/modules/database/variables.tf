variable "name" {
  type        = string
  description = "The instance's identifier."
}

variable "database_name" {
  type        = string
  description = "The database created on the instance (ehr or hapi)."
}

variable "master_username" {
  type        = string
  description = "The instance's master user; its password is generated, kept and rotated by RDS in Secrets Manager."
}

variable "engine_version" {
  type        = string
  description = "PostgreSQL major version, e.g. 16 (RDS applies minor upgrades in the maintenance window)."
}

variable "instance_class" {
  type        = string
  description = "The RDS instance class, e.g. db.r7g.large."
}

variable "allocated_storage_gb" {
  type        = number
  description = "Initial gp3 storage in GiB."
}

variable "max_allocated_storage_gb" {
  type        = number
  description = "Storage autoscaling ceiling in GiB."
}

variable "multi_az" {
  type        = bool
  description = "A synchronous standby in a second zone (production: true)."
}

variable "backup_retention_days" {
  type        = number
  description = "Automated backups and point-in-time recovery window in days."

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35: clinical data needs point-in-time recovery."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the instance (turn off deliberately, in its own apply, before destroying)."
}

variable "subnet_ids" {
  type        = list(string)
  description = "The database subnets (no route out of the VPC)."
}

variable "vpc_id" {
  type        = string
  description = "The VPC the security group belongs to."
}

variable "client_security_group_id" {
  type        = string
  description = "The only security group allowed to connect (the Kubernetes nodes')."
}

variable "log_retention_days" {
  type        = number
  description = "How long the exported PostgreSQL logs are kept."
}

variable "kms_key_arn" {
  type        = string
  description = "Encrypts storage, snapshots, Performance Insights and the master password's secret."
}
