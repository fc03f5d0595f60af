# API Gateway in front of the services with routes. Its OpenAPI 2.0 document is built
# here from the manifest's routes; each operation points at its function's service,
# which the gateway calls with its own service account (the only non-trigger invoker).
# The gateway moves the caller's Authorization header to X-Forwarded-Authorization.

locals {
  # Every route as an OpenAPI operation, grouped by path.
  openapi_paths = {
    for path in distinct([for r in values(local.routes) : r.path]) : path => {
      for key, r in local.routes : lower(r.method) => merge(
        {
          operationId = "${r.function}_${lower(r.method)}_${join("_", regexall("[a-z0-9]+", lower(r.path)))}"
          parameters  = [for m in regexall("\\{([^}]+)\\}", r.path) : { name = m[0], in = "path", required = true, type = "string" }]
          responses   = { default = { description = "See the function's /openapi.json" } }
          "x-google-backend" = {
            address          = module.service[r.function].uri
            path_translation = "APPEND_PATH_TO_ADDRESS"
            jwt_audience     = module.service[r.function].uri
            deadline         = local.functions[r.function].timeout_s
          }
        },
        # Filtered rather than `cond ? {...} : {}`, so both outcomes have one type.
        { for k, v in { security = [{ firebase = [] }] } : k => v if var.gateway_verifies_id_tokens },
      ) if r.path == path
    }
  }

  # CORS preflights carry no credentials, so each path gets an OPTIONS operation without
  # security, sent to the service of the path's first route, which answers it
  # (CORS_ALLOWED_ORIGINS, services.tf). Without it the gateway refuses every preflight.
  preflight_paths = {
    for path in distinct([for r in values(local.routes) : r.path]) : path => {
      options = {
        operationId = "preflight_${join("_", regexall("[a-z0-9]+", lower(path)))}"
        parameters  = [for m in regexall("\\{([^}]+)\\}", path) : { name = m[0], in = "path", required = true, type = "string" }]
        responses   = { default = { description = "CORS preflight" } }
        "x-google-backend" = {
          address          = module.service[[for r in values(local.routes) : r.function if r.path == path][0]].uri
          path_translation = "APPEND_PATH_TO_ADDRESS"
          jwt_audience     = module.service[[for r in values(local.routes) : r.function if r.path == path][0]].uri
        }
      }
    } if length(var.cors_allowed_origins) > 0
  }

  openapi = merge(
    {
      swagger  = "2.0"
      info     = { title = "${var.name_prefix} API", version = "1.0.0" }
      schemes  = ["https"]
      produces = ["application/json"]
      paths    = { for path, ops in local.openapi_paths : path => merge(ops, try(local.preflight_paths[path], {})) }
    },
    {
      for k, v in {
        securityDefinitions = {
          firebase = {
            type                 = "oauth2"
            flow                 = "implicit"
            authorizationUrl     = ""
            "x-google-issuer"    = "https://securetoken.google.com/${local.firebase_project}"
            "x-google-jwks_uri"  = "https://www.googleapis.com/service_accounts/v1/metadata/x509/securetoken@system.gserviceaccount.com"
            "x-google-audiences" = local.firebase_project
          }
        }
      } : k => v if var.gateway_verifies_id_tokens
    },
  )
}

resource "google_api_gateway_api" "api" {
  provider = google-beta
  project  = var.project
  api_id   = "${var.name_prefix}-api"
  labels   = var.labels

  depends_on = [google_project_service.this]
}

resource "google_api_gateway_api_config" "api" {
  provider             = google-beta
  project              = var.project
  api                  = google_api_gateway_api.api.api_id
  api_config_id_prefix = "${var.name_prefix}-"

  openapi_documents {
    document {
      path     = "openapi.json"
      contents = base64encode(jsonencode(local.openapi))
    }
  }

  gateway_config {
    backend_config {
      google_service_account = google_service_account.gateway.email
    }
  }

  # A config in use cannot be deleted; the gateway moves to the new one first.
  lifecycle {
    create_before_destroy = true
  }
}

resource "google_api_gateway_gateway" "api" {
  provider   = google-beta
  project    = var.project
  region     = var.region
  gateway_id = "${var.name_prefix}-gateway"
  api_config = google_api_gateway_api_config.api.id
  labels     = var.labels
}
