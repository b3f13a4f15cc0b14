# The EHR platform on AWS: a VPC with private tiers, EKS for the Helm chart in k8s/, two RDS
# PostgreSQL instances (ours: tenants, users, audit, jobs; HAPI's: all clinical data), ElastiCache
# Redis, one KMS key and Secrets Manager for what must stay secret. Why AWS and this shape:
# docs/adr/0031-aws-infrastructure.md.

locals {
  tags = merge(var.tags, {
    "app.kubernetes.io/part-of" = "ehr-platform"
    environment                 = var.environment
    managed-by                  = "terraform"
  })
  repository_root = "${path.root}/.."
}

module "network" {
  source                  = "./modules/network"
  name                    = var.name
  cidr                    = var.vpc_cidr
  zone_count              = var.zone_count
  single_nat_gateway      = var.single_nat_gateway
  flow_log_retention_days = var.log_retention_days
  kms_key_arn             = module.secrets.kms_key_arn
}

module "secrets" {
  source               = "./modules/secrets"
  name                 = var.name
  recovery_window_days = var.secret_recovery_window_days
}

module "cluster" {
  source               = "./modules/cluster"
  name                 = var.name
  kubernetes_version   = var.kubernetes_version
  subnet_ids           = module.network.private_subnet_ids
  public_access_cidrs  = var.cluster_public_access_cidrs
  admin_principal_arns = var.cluster_admin_principal_arns
  node_groups          = var.node_groups
  kms_key_arn          = module.secrets.kms_key_arn
  log_retention_days   = var.log_retention_days
}

module "app_database" {
  source                   = "./modules/database"
  name                     = "${var.name}-app"
  database_name            = "ehr"
  master_username          = "ehr"
  engine_version           = var.postgres_version
  instance_class           = var.app_db_instance_class
  allocated_storage_gb     = var.app_db_storage_gb
  max_allocated_storage_gb = var.app_db_storage_gb * 5
  multi_az                 = var.multi_az
  backup_retention_days    = var.backup_retention_days
  deletion_protection      = var.deletion_protection
  log_retention_days       = var.log_retention_days
  subnet_ids               = module.network.database_subnet_ids
  vpc_id                   = module.network.vpc_id
  client_security_group_id = module.cluster.node_security_group_id
  kms_key_arn              = module.secrets.kms_key_arn
}

module "hapi_database" {
  source                   = "./modules/database"
  name                     = "${var.name}-hapi"
  database_name            = "hapi"
  master_username          = "hapi"
  engine_version           = var.postgres_version
  instance_class           = var.hapi_db_instance_class
  allocated_storage_gb     = var.hapi_db_storage_gb
  max_allocated_storage_gb = var.hapi_db_storage_gb * 5
  multi_az                 = var.multi_az
  backup_retention_days    = var.backup_retention_days
  deletion_protection      = var.deletion_protection
  log_retention_days       = var.log_retention_days
  subnet_ids               = module.network.database_subnet_ids
  vpc_id                   = module.network.vpc_id
  client_security_group_id = module.cluster.node_security_group_id
  kms_key_arn              = module.secrets.kms_key_arn
}

module "redis" {
  source                   = "./modules/redis"
  name                     = var.name
  engine_version           = var.redis_version
  node_type                = var.redis_node_type
  replicas                 = var.redis_replicas
  auth_token               = module.secrets.redis_auth_token
  subnet_ids               = module.network.database_subnet_ids
  vpc_id                   = module.network.vpc_id
  client_security_group_id = module.cluster.node_security_group_id
  kms_key_arn              = module.secrets.kms_key_arn
}

module "platform" {
  source            = "./modules/platform"
  name              = var.name
  region            = var.region
  namespace         = var.namespace
  chart_path        = "${local.repository_root}/k8s/ehr-platform"
  values_files      = [for f in var.chart_values_files : "${local.repository_root}/${f}"]
  image_repository  = var.image_repository
  image_tag         = var.image_tag
  public_host       = var.public_host
  tls_secret_name   = var.tls_secret_name
  oidc_provider_arn = module.cluster.oidc_provider_arn
  oidc_issuer       = module.cluster.oidc_issuer
  kms_key_arn       = module.secrets.kms_key_arn
  app_secret_arn    = module.secrets.app_secret_arn
  app_secret_name   = module.secrets.app_secret_name
  app_database = {
    address           = module.app_database.address
    port              = module.app_database.port
    name              = module.app_database.database_name
    master_secret_arn = module.app_database.master_user_secret_arn
  }
  hapi_database = {
    address           = module.hapi_database.address
    port              = module.hapi_database.port
    name              = module.hapi_database.database_name
    master_secret_arn = module.hapi_database.master_user_secret_arn
  }
  redis = {
    address = module.redis.primary_endpoint
    port    = module.redis.port
  }
  database_cidr                  = module.network.database_tier_cidr
  external_secrets_chart_version = var.external_secrets_chart_version
  ingress_nginx_chart_version    = var.ingress_nginx_chart_version

  depends_on = [module.cluster]
}
