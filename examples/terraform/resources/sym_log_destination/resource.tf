# Every audit entry, POSTed as JSON to an HTTP endpoint (no integration needed).
resource "sym_log_destination" "audit" {
  type = "http"

  settings = {
    url = "https://audit.example.com/sym"
  }
}

# A Kinesis Firehose delivery stream, written through a permission context.
resource "sym_log_destination" "firehose" {
  type           = "kinesis_firehose"
  integration_id = sym_integration.runtime_context.id

  settings = {
    stream_name = "SymReportingLogsMain"
  }
}
