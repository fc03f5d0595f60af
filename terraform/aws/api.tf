# The HTTP API: every manifest route, each behind the `auth` function as a REQUEST
# authorizer (payload 2.0, simple responses). Answers are cached per Authorization
# header, so integrators send API keys as `Authorization: Bearer ck_...` here.

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name_prefix}-api"
  protocol_type = "HTTP"
  description   = "Catalyst public API"

  # Browsers preflight here; API Gateway answers OPTIONS itself, without the authorizer.
  cors_configuration {
    allow_origins  = var.cors_allowed_origins
    allow_methods  = distinct([for r in values(local.routes) : r.method])
    allow_headers  = ["authorization", "content-type", "x-api-key", "traceparent"]
    expose_headers = ["x-request-id"]
    max_age        = 3600
  }
}

resource "aws_apigatewayv2_authorizer" "auth" {
  api_id                            = aws_apigatewayv2_api.http.id
  name                              = "${var.name_prefix}-auth"
  authorizer_type                   = "REQUEST"
  authorizer_uri                    = module.function[local.authorizer_function].invoke_arn
  authorizer_payload_format_version = "2.0"
  enable_simple_responses           = true
  identity_sources                  = ["$request.header.Authorization"]
  authorizer_result_ttl_in_seconds  = var.authorizer_cache_ttl_s
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "api-gateway-authorizer"
  action        = "lambda:InvokeFunction"
  function_name = module.function[local.authorizer_function].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.auth.id}"
}

resource "aws_apigatewayv2_integration" "function" {
  for_each = local.http_functions

  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = module.function[each.key].invoke_arn
  payload_format_version = "2.0"
  # HTTP APIs cut integrations at 30 s whatever the function's own timeout.
  timeout_milliseconds = min(local.functions[each.key].timeout_s, 30) * 1000
}

resource "aws_apigatewayv2_route" "route" {
  for_each = local.routes

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.function[each.value.function].id}"
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.auth.id
}

resource "aws_lambda_permission" "api" {
  for_each = local.http_functions

  statement_id  = "api-gateway"
  action        = "lambda:InvokeFunction"
  function_name = module.function[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}

resource "aws_cloudwatch_log_group" "api" {
  name              = "/aws/apigateway/${var.name_prefix}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit   = var.api_throttle.burst_limit
    throttling_rate_limit    = var.api_throttle.rate_limit
    detailed_metrics_enabled = true
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    format = jsonencode({
      requestId        = "$context.requestId"
      ip               = "$context.identity.sourceIp"
      time             = "$context.requestTime"
      routeKey         = "$context.routeKey"
      status           = "$context.status"
      latencyMs        = "$context.responseLatency"
      integrationError = "$context.integrationErrorMessage"
      authorizerError  = "$context.authorizer.error"
      uid              = "$context.authorizer.uid"
    })
  }
}
