# --- where and what ----------------------------------------------------------------------------

variable "name" {
  type        = string
  description = "Prefix of every resource's name, e.g. ehr-prod."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name))
    error_message = "name: 3–21 lower-case letters, digits and hyphens, starting with a letter (RDS and ElastiCache identifiers)."
  }
}

variable "environment" {
  type        = string
  description = "production, staging, … (a tag on every resource)."
}

variable "region" {
  type        = string
  description = "The AWS region, e.g. eu-west-1 (choose one where the data may legally reside)."
}

variable "tags" {
  type        = map(string)
  description = "Extra tags on every resource (cost centre, data classification)."
  default     = {}
}

# --- network -------------------------------------------------------------------------------------

variable "vpc_cidr" {
  type        = string
  description = "The VPC's range; a /16 is expected (public, private and database tiers are carved from it)."
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be an IPv4 /16."
  }
}

variable "zone_count" {
  type        = number
  description = "Availability zones (2 or 3)."
  default     = 3
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway instead of one per zone (staging: true; production: false)."
  default     = false
}

variable "log_retention_days" {
  type        = number
  description = "Retention of flow logs and the control plane's logs, in days."
  default     = 365
}

# --- cluster ------------------------------------------------------------------------------------

variable "kubernetes_version" {
  type        = string
  description = "EKS Kubernetes version."
  default     = "1.33"
}

variable "cluster_public_access_cidrs" {
  type        = list(string)
  description = "Ranges allowed to the API server's public endpoint; [] keeps it private (VPN or bastion)."
  default     = []
}

variable "cluster_admin_principal_arns" {
  type        = list(string)
  description = "IAM roles given cluster-admin (e.g. the platform team's SSO role and the CI deploy role)."
}

variable "node_groups" {
  type = map(object({
    instance_types = list(string)
    capacity_type  = string
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_gb        = number
    labels         = map(string)
  }))
  description = "Managed node groups. HAPI wants memory (its heap plus PostgreSQL connections)."
  default = {
    general = {
      instance_types = ["m7i.xlarge"]
      capacity_type  = "ON_DEMAND"
      min_size       = 3
      desired_size   = 3
      max_size       = 9
      disk_gb        = 50
      labels         = {}
    }
  }
}

# --- data stores --------------------------------------------------------------------------------

variable "postgres_version" {
  type        = string
  description = "PostgreSQL major version for both instances (RDS applies minor versions in the maintenance window; HAPI supports 13 and later)."
  default     = "16"
}

variable "app_db_instance_class" {
  type        = string
  description = "Our instance (tenants, users, sessions, audit, jobs, HL7 inbox): small, write-heavy audit."
  default     = "db.m7g.large"
}

variable "app_db_storage_gb" {
  type        = number
  description = "Our instance's initial storage (autoscaling to five times this)."
  default     = 50
}

variable "hapi_db_instance_class" {
  type        = string
  description = "HAPI's instance: all clinical data and its search indexes; size for the working set."
  default     = "db.r7g.xlarge"
}

variable "hapi_db_storage_gb" {
  type        = number
  description = "HAPI's instance's initial storage (autoscaling to five times this)."
  default     = 200
}

variable "multi_az" {
  type        = bool
  description = "A synchronous standby for both databases."
  default     = true
}

variable "backup_retention_days" {
  type        = number
  description = "Point-in-time recovery window of both databases (7–35 days)."
  default     = 35
}

variable "deletion_protection" {
  type        = bool
  description = "Both databases refuse deletion; set false in a separate apply before a deliberate destroy."
  default     = true
}

variable "redis_version" {
  type        = string
  description = "ElastiCache Redis OSS version."
  default     = "7.1"
}

variable "redis_node_type" {
  type        = string
  description = "ElastiCache node type."
  default     = "cache.r7g.large"
}

variable "redis_replicas" {
  type        = number
  description = "Redis replicas besides the primary (at least 1)."
  default     = 1
}

variable "secret_recovery_window_days" {
  type        = number
  description = "Days a deleted secret can be restored."
  default     = 30
}

# --- the platform in the cluster -------------------------------------------------------------------

variable "namespace" {
  type        = string
  description = "The namespace the chart is installed into."
  default     = "ehr"
}

variable "image_repository" {
  type        = string
  description = "The backend image (built from backend/Dockerfile and pushed to your registry, e.g. ECR)."
}

variable "image_tag" {
  type        = string
  description = "The backend image's release tag."

  validation {
    condition     = var.image_tag != "latest" && length(var.image_tag) > 0
    error_message = "image_tag must name a release, never latest: a rollback must know what it returns to."
  }
}

variable "public_host" {
  type        = string
  description = "The public host name, e.g. ehr.hospital.example."
}

variable "tls_secret_name" {
  type        = string
  description = "The TLS Secret for public_host in the namespace (cert-manager or imported)."
}

variable "chart_values_files" {
  type        = list(string)
  description = "Values files for the chart, relative to the repository root; applied before what Terraform sets."
  default     = ["k8s/values-production.yaml"]
}

variable "external_secrets_chart_version" {
  type        = string
  description = "External Secrets Operator chart version (serves external-secrets.io/v1)."
  default     = "0.19.2"
}

variable "ingress_nginx_chart_version" {
  type        = string
  description = "ingress-nginx chart version."
  default     = "4.13.3"
}
