variable "name" {
  type        = string
  description = "Prefix of every resource's name."
}

variable "cidr" {
  type        = string
  description = "The VPC's IPv4 range; split into public, private (nodes) and database subnets per zone."
}

variable "zone_count" {
  type        = number
  description = "Availability zones to spread over (2 or 3)."

  validation {
    condition     = var.zone_count >= 2 && var.zone_count <= 3
    error_message = "zone_count must be 2 or 3: the database and Redis need two zones for failover."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for all zones (cheaper, one zone's outage cuts egress) instead of one per zone."
}

variable "kms_key_arn" {
  type        = string
  description = "Encrypts the flow logs."
}

variable "flow_log_retention_days" {
  type        = number
  description = "How long VPC flow logs are kept in CloudWatch Logs."
}
