# What runs in the cluster: an ingress controller, the External Secrets Operator (with an IAM
# role of its own that may read only this platform's secrets), the Kubernetes Secret the chart
# references (composed by the operator from Secrets Manager, refreshed hourly: RDS's password
# rotation reaches the pods on their next restart), and the ehr-platform chart itself.

locals {
  oidc_host            = replace(var.oidc_issuer, "https://", "")
  eso_namespace        = "external-secrets"
  eso_service_account  = "external-secrets"
  platform_secret_name = "${var.name}-secrets"
  secret_store_name    = "${var.name}-aws"
  app_db               = var.app_database
  hapi_db              = var.hapi_database
  app_db_host          = "${local.app_db.address}:${local.app_db.port}"
  hapi_db_host         = "${local.hapi_db.address}:${local.hapi_db.port}"
  redis_host           = "${var.redis.address}:${var.redis.port}"
  readable_secret_arns = [var.app_secret_arn, local.app_db.master_secret_arn, local.hapi_db.master_secret_arn]
  # An internet-facing NLB from the in-tree cloud controller (no AWS Load Balancer Controller).
  ingress_nginx_defaults = { controller = { service = { annotations = { "service.beta.kubernetes.io/aws-load-balancer-type" = "nlb" } }, config = { "use-forwarded-headers" = "false", "hsts" = "true", "ssl-redirect" = "true" } } }
}

data "aws_partition" "current" {}

# --- the operator's IAM role (IRSA): read these three secrets, decrypt with our key ---------------

resource "aws_iam_role" "external_secrets" {
  name = "${var.name}-external-secrets"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = var.oidc_provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_host}:sub" = "system:serviceaccount:${local.eso_namespace}:${local.eso_service_account}"
          "${local.oidc_host}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
}

resource "aws_iam_role_policy" "external_secrets" {
  name = "read-platform-secrets"
  role = aws_iam_role.external_secrets.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Resource = local.readable_secret_arns
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [var.kms_key_arn]
      },
    ]
  })
}

# --- releases ---------------------------------------------------------------------------------------

resource "helm_release" "ingress_nginx" {
  name             = "ingress-nginx"
  namespace        = "ingress-nginx"
  create_namespace = true
  repository       = "https://kubernetes.github.io/ingress-nginx"
  chart            = "ingress-nginx"
  version          = var.ingress_nginx_chart_version
  values           = [yamlencode(local.ingress_nginx_defaults)]
  wait             = true
}

resource "helm_release" "external_secrets" {
  name             = "external-secrets"
  namespace        = local.eso_namespace
  create_namespace = true
  repository       = "https://charts.external-secrets.io"
  chart            = "external-secrets"
  version          = var.external_secrets_chart_version
  wait             = true
  values = [yamlencode({
    installCRDs = true
    serviceAccount = {
      name        = local.eso_service_account
      annotations = { "eks.amazonaws.com/role-arn" = aws_iam_role.external_secrets.arn }
    }
  })]
}

# The Secret the chart references (its keys as in k8s/ehr-platform/values.yaml, `secrets`), composed
# from the three Secrets Manager secrets; the connection URLs require TLS. The operator renders the
# `template` strings (Go templates), Helm passes them through as values.
resource "helm_release" "platform_secrets" {
  name             = "${var.name}-secrets"
  namespace        = var.namespace
  create_namespace = true
  chart            = "${path.module}/../../charts/ehr-secrets"
  wait             = true
  values = [yamlencode({
    region          = var.region
    storeName       = local.secret_store_name
    targetName      = local.platform_secret_name
    refreshInterval = "1h"
    sources = {
      app    = var.app_secret_name
      appDb  = local.app_db.master_secret_arn
      hapiDb = local.hapi_db.master_secret_arn
    }
    data = {
      "db-url"           = "postgresql+asyncpg://{{ .appDbUsername | urlquery }}:{{ .appDbPassword | urlquery }}@${local.app_db_host}/${local.app_db.name}?ssl=require"
      "redis-url"        = "rediss://:{{ .redisAuthToken | urlquery }}@${local.redis_host}/0"
      "secret-key"       = "{{ .secretKey }}"
      "encryption-keys"  = "{{ .encryptionKeys }}"
      "hapi-db-url"      = "jdbc:postgresql://${local.hapi_db_host}/${local.hapi_db.name}?sslmode=require"
      "hapi-db-username" = "{{ .hapiDbUsername }}"
      "hapi-db-password" = "{{ .hapiDbPassword }}"
      "redis-password"   = "{{ .redisAuthToken }}"
    }
  })]

  depends_on = [helm_release.external_secrets]
}

resource "helm_release" "platform" {
  name             = var.name
  namespace        = var.namespace
  create_namespace = true
  chart            = var.chart_path
  wait             = true
  timeout          = 900
  values = concat([for f in var.values_files : file(f)], [yamlencode({
    image   = { repository = var.image_repository, tag = var.image_tag }
    secrets = { existingSecret = local.platform_secret_name }
    api     = { publicBaseUrl = "https://${var.public_host}" }
    redis   = { enabled = false }
    ingress = { enabled = true, className = "nginx", host = var.public_host, tlsSecret = var.tls_secret_name }
    networkPolicy = {
      enabled      = true
      databaseCidr = var.database_cidr
      redisCidr    = var.database_cidr
    }
  })])

  depends_on = [helm_release.platform_secrets, helm_release.ingress_nginx]
}
