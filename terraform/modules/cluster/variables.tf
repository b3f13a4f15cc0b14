variable "name" {
  type        = string
  description = "The cluster's name."
}

variable "kubernetes_version" {
  type        = string
  description = "EKS Kubernetes version, e.g. 1.33."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the control plane's interfaces and the nodes."
}

variable "public_access_cidrs" {
  type        = list(string)
  description = "Ranges allowed to reach the API server's public endpoint; empty: private endpoint only (reach it through a VPN or bastion)."
}

variable "admin_principal_arns" {
  type        = list(string)
  description = "IAM roles or users given cluster-admin through EKS access entries."
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
  description = "Managed node groups by name; capacity_type ON_DEMAND or SPOT."

  validation {
    condition     = alltrue([for g in values(var.node_groups) : contains(["ON_DEMAND", "SPOT"], g.capacity_type)])
    error_message = "capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "Encrypts the cluster's Kubernetes Secrets (envelope encryption) and its logs."
}

variable "log_retention_days" {
  type        = number
  description = "How long the control plane's logs (API server, audit, authenticator) are kept."
}
