terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40.0, < 7.0.0"
    }
  }
}

# Everything dr needs lives in the DR region, so it survives the loss of the primary.
provider "aws" {
  region = var.dr_region

  default_tags {
    tags = var.tags
  }
}
