# terraform plan -var-file=examples/production.tfvars (copy and edit; no secrets belong here)
name        = "ehr-prod"
environment = "production"
region      = "eu-west-1"
tags = {
  cost-centre         = "clinical-systems"
  data-classification = "phi"
}

cluster_admin_principal_arns = [
  "arn:aws:iam::111122223333:role/platform-admins",
  "arn:aws:iam::111122223333:role/ci-deploy",
]
cluster_public_access_cidrs = []

image_repository = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/ehr/backend"
image_tag        = "0.1.0"
public_host      = "ehr.hospital.example"
tls_secret_name  = "ehr-hospital-tls"
