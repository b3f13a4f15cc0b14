provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# The chart is installed into the cluster this configuration creates; credentials come from the
# AWS CLI at apply time (no long-lived Kubernetes token is written to the state).
provider "helm" {
  kubernetes = {
    host                   = module.cluster.endpoint
    cluster_ca_certificate = base64decode(module.cluster.certificate_authority)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.cluster.name, "--region", var.region]
    }
  }
}
