terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.10, < 8.0"
    }
    # API Gateway resources exist only in the beta provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.10, < 8.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

provider "google-beta" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project
}
