terraform {
  # Terraform >= 1.10 or OpenTofu >= 1.10: S3 state locking with a lock file (use_lockfile).
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Remote state in S3, encrypted, locked by a lock object next to the state (no DynamoDB table).
  # The bucket, key and region come from a backend file: terraform init -backend-config=backend.hcl
  # (see examples/backend.hcl.example and README.md).
  backend "s3" {}
}
