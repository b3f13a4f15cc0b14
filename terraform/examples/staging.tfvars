# A smaller, cheaper environment: two zones, one NAT gateway, single-AZ databases, no deletion
# protection (staging is rebuilt at will), shorter retention.
name               = "ehr-staging"
environment        = "staging"
region             = "eu-west-1"
zone_count         = 2
single_nat_gateway = true
log_retention_days = 30

# Include the identity that runs Terraform: the creator gets no cluster access of its own.
cluster_admin_principal_arns = [
  "arn:aws:iam::111122223333:role/platform-admins",
  "arn:aws:iam::111122223333:role/ci-deploy",
]
cluster_public_access_cidrs = ["203.0.113.0/24"]
node_groups = {
  general = {
    instance_types = ["m7i.large"]
    capacity_type  = "SPOT"
    min_size       = 2
    desired_size   = 2
    max_size       = 4
    disk_gb        = 40
    labels         = {}
  }
}

app_db_instance_class       = "db.t4g.medium"
hapi_db_instance_class      = "db.m7g.large"
hapi_db_storage_gb          = 50
multi_az                    = false
backup_retention_days       = 7
deletion_protection         = false
redis_node_type             = "cache.t4g.small"
secret_recovery_window_days = 7

image_repository   = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/ehr/backend"
image_tag          = "0.1.0"
public_host        = "ehr.staging.hospital.example"
tls_secret_name    = "ehr-staging-tls"
chart_values_files = []
