variable "name" {
  type        = string
  description = "The replication group's id."
}

variable "engine_version" {
  type        = string
  description = "Redis OSS version (7.x)."
}

variable "node_type" {
  type        = string
  description = "The cache node type, e.g. cache.r7g.large."
}

variable "replicas" {
  type        = number
  description = "Read replicas besides the primary (at least 1: automatic failover across zones)."

  validation {
    condition     = var.replicas >= 1
    error_message = "replicas must be at least 1 so that a zone's loss fails over."
  }
}

variable "auth_token" {
  type        = string
  description = "The AUTH token clients present (TLS carries it)."
  sensitive   = true
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

variable "kms_key_arn" {
  type        = string
  description = "Encrypts the data at rest and the snapshots."
}
