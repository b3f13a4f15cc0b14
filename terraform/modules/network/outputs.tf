output "vpc_id" {
  description = "The VPC's id."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's IPv4 range."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Subnets for internet-facing load balancers and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Subnets for the Kubernetes nodes (egress through NAT)."
  value       = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  description = "Subnets for PostgreSQL and Redis: no route out of the VPC."
  value       = aws_subnet.database[*].id
}

output "database_tier_cidr" {
  description = "One range covering every database subnet (the chart's NetworkPolicy egress to PostgreSQL and Redis)."
  value       = local.database_tier
}
