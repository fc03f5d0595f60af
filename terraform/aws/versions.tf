terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = merge({ app = "catalyst", stack = var.name_prefix }, var.tags)
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
