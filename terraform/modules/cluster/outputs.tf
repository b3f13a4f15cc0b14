output "name" {
  description = "The cluster's name."
  value       = aws_eks_cluster.this.name
}

output "endpoint" {
  description = "The Kubernetes API server's URL."
  value       = aws_eks_cluster.this.endpoint
}

output "certificate_authority" {
  description = "The cluster CA certificate, base64-encoded."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "node_security_group_id" {
  description = "The cluster security group EKS attaches to the control plane and the managed nodes."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "The IAM OIDC provider for service-account roles (IRSA)."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_issuer" {
  description = "The cluster's OIDC issuer URL."
  value       = aws_eks_cluster.this.identity[0].oidc[0].issuer
}
