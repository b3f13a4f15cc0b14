# One customer-managed KMS key encrypts everything at rest (databases, Redis, the cluster's
# Kubernetes Secrets, Secrets Manager, logs), and one Secrets Manager secret holds the API's own
# secrets. The database passwords are not here: RDS keeps them in secrets of its own and rotates
# them (database module, manage_master_user_password).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

resource "aws_kms_key" "this" {
  description             = "${var.name}: data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncrypt"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# The API's key material. Generated here, so they are in the Terraform state: keep the state
# in its encrypted, access-controlled bucket (README.md, "Remote state").
resource "random_password" "secret_key" {
  length  = 64
  special = false
}

resource "random_password" "redis_auth_token" {
  # ElastiCache AUTH: 16–128 printable characters, no @, " or /.
  length           = 64
  special          = true
  override_special = "-_.~"
}

resource "random_bytes" "encryption_key" {
  length = 32
}

locals {
  # A Fernet key is 32 random bytes in URL-safe base64.
  fernet_key = replace(replace(random_bytes.encryption_key.base64, "+", "-"), "/", "_")
}

resource "aws_secretsmanager_secret" "app" {
  name                    = "${var.name}/app"
  description             = "The EHR API's secret key, at-rest encryption keys and the Redis AUTH token"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.recovery_window_days
}

resource "aws_secretsmanager_secret_version" "app" {
  secret_id = aws_secretsmanager_secret.app.id
  secret_string = jsonencode({
    secret_key       = random_password.secret_key.result
    encryption_keys  = jsonencode([local.fernet_key])
    redis_auth_token = random_password.redis_auth_token.result
  })

  # Rotating the encryption keys is an operator's act (prepend a new key, keep the old ones while
  # data is re-encrypted): Terraform never overwrites what the operator put in the secret.
  lifecycle {
    ignore_changes = [secret_string]
  }
}
