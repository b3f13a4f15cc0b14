variable "name" {
  type        = string
  description = "Prefix of IAM names and the Helm release's name."
}

variable "region" {
  type        = string
  description = "The AWS region the secrets are read from."
}

variable "namespace" {
  type        = string
  description = "The namespace the platform is installed into."
}

variable "chart_path" {
  type        = string
  description = "Path to the ehr-platform chart (k8s/ehr-platform in this repository)."
}

variable "values_files" {
  type        = list(string)
  description = "Values files applied before the ones this module sets (e.g. k8s/values-production.yaml)."
}

variable "image_repository" {
  type        = string
  description = "The backend image's repository."
}

variable "image_tag" {
  type        = string
  description = "The backend image's tag (a release, never latest)."
}

variable "public_host" {
  type        = string
  description = "The public host name the ingress serves (TLS)."
}

variable "tls_secret_name" {
  type        = string
  description = "The Kubernetes TLS Secret for public_host (issued by cert-manager or imported)."
}

variable "oidc_provider_arn" {
  type        = string
  description = "The cluster's IAM OIDC provider (service-account roles)."
}

variable "oidc_issuer" {
  type        = string
  description = "The cluster's OIDC issuer URL."
}

variable "kms_key_arn" {
  type        = string
  description = "The key the synced secrets are encrypted with."
}

variable "app_secret_arn" {
  type        = string
  description = "The API's own secrets (secret key, encryption keys, Redis AUTH token)."
}

variable "app_secret_name" {
  type        = string
  description = "The app secret's name."
}

variable "app_database" {
  type = object({
    address           = string
    port              = number
    name              = string
    master_secret_arn = string
  })
  description = "Our PostgreSQL instance and the RDS-managed secret of its master user."
}

variable "hapi_database" {
  type = object({
    address           = string
    port              = number
    name              = string
    master_secret_arn = string
  })
  description = "HAPI's PostgreSQL instance and the RDS-managed secret of its master user."
}

variable "redis" {
  type = object({
    address = string
    port    = number
  })
  description = "The managed Redis's primary endpoint (TLS)."
}

variable "database_cidr" {
  type        = string
  description = "The range holding PostgreSQL and Redis (the chart's NetworkPolicy egress)."
}

variable "external_secrets_chart_version" {
  type        = string
  description = "The External Secrets Operator chart version."
}

variable "ingress_nginx_chart_version" {
  type        = string
  description = "The ingress-nginx chart version."
}
