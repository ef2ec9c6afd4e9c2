terraform {
  required_providers {
    sym = {
      source = "symopsio/sym"
    }
  }
}

provider "sym" {
  # Your organization's slug (or ID).
  org = "my-org"

  # Optional: the environment variable that holds the bot token. Defaults to SYM_JWT.
  # jwt_env_var = "SYM_JWT"

  # Optional: the API base URL. Defaults to $SYM_API_URL, else http://127.0.0.1:8080/api/v1.
  # api_url = "https://sym.example.com/api/v1"
}
