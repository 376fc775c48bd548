"""A broad redaction corpus: secrets of many providers, in the five places an LLM exchange carries
them, and look-alikes that must come out unchanged.

Every secret is generated from a fixed seed in its provider's public format (prefix, length,
alphabet); none is real. A *case* is a secret type, the needle (the part that must disappear) and
the text (or JSON structure) it typically appears in. `placements` puts each case in the five places
of an exchange: a user message, the response text, OpenAI `tool_calls` arguments (a JSON string),
a nested response object, and Anthropic `tool_use` input. Used by tests/test_redact.py (which
asserts the thresholds) and `python -m bench.redaction` (which prints per-type figures).
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_RNG = random.Random(16_2026)
LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
DIGITS = string.digits
ALNUM = LOWER + UPPER + DIGITS
HEX = DIGITS + "abcdef"
B64URL = ALNUM + "_-"
B64 = ALNUM + "+/"


def rnd(alphabet: str, n: int) -> str:
    """Random text of `n` characters with a digit and a letter in it when the alphabet has both."""
    while True:
        s = "".join(_RNG.choice(alphabet) for _ in range(n))
        if (not any(c.isdigit() for c in alphabet) or any(c.isdigit() for c in s)) and (
            not any(c.isalpha() for c in alphabet) or any(c.isalpha() for c in s)
        ):
            return s


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem(label: str) -> tuple[str, str]:
    """(PEM block, one of its body lines)."""
    body = [b64(_RNG.randbytes(48)) for _ in range(5)] + [b64(_RNG.randbytes(10))]
    return "\n".join([f"-----BEGIN {label}-----", *body, f"-----END {label}-----"]), body[2]


def jwt() -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": rnd(HEX, 8)}).encode())
    claims = {"sub": str(_RNG.randrange(10**9)), "iat": 1780000000, "aud": "api", "scope": "read write"}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(_RNG.randbytes(64))}"


@dataclass(frozen=True)
class Case:
    """One secret in context. `value` is a text or a JSON structure; `needle` must not survive."""

    kind: str
    needle: str
    value: Any


def _text(kind: str, needle: str, template: str) -> Case:
    return Case(kind, needle, template.format(s=needle))


# ---- secrets: (type, needle, context) built from each provider's public token format

def _secret_cases() -> list[Case]:
    cases: list[Case] = []

    def add(kind: str, needle: str, *templates: str) -> None:
        cases.extend(_text(kind, needle, t) for t in templates)

    # HTTP credentials, as logged by curl -v, HTTP client debug logs and header maps
    bearer = rnd(ALNUM + "._-", 40)
    add("authorization_bearer", bearer,
        "curl -sS -H 'Authorization: Bearer {s}' https://api.example.com/v1/items")
    add("authorization_bearer", rnd(ALNUM, 32), "> GET /v2/orders HTTP/1.1\n> Host: api.shop.test\n"
                                                "> Authorization: Bearer {s}\n> Accept: */*")
    basic = b64(f"deploy:{rnd(ALNUM, 14)}".encode())
    add("authorization_basic", basic, 'curl -v -H "Authorization: Basic {s}" https://registry.example.com/v2/')
    add("authorization_basic", b64(f"ci-bot:{rnd(ALNUM, 18)}".encode()), "authorization: basic {s}\r\nuser-agent: x")
    add("curl_user_password", rnd(ALNUM, 16), "curl -u admin:{s} https://jenkins.internal/api/json")
    add("cookie_header", rnd(HEX, 32), "Cookie: sessionid={s}; csrftoken=abc; theme=dark")
    add("cookie_header", rnd(B64URL, 40), "< Set-Cookie: __Host-session={s}; Path=/; Secure; HttpOnly")
    header_map = {"method": "POST", "url": "https://api.example.com/v1/run",
                  "headers": {"Content-Type": "application/json", "Authorization": "Bearer {s}"}}
    token = rnd(ALNUM, 36)
    cases.append(Case("header_map_bearer", token, json.loads(json.dumps(header_map).replace("{s}", token))))
    api_key = rnd(HEX, 32)
    cases.append(Case("header_map_api_key", api_key,
                      {"headers": [["Accept", "application/json"], ["X-Api-Key", api_key]], "timeout": 30}))
    private_token = "glpat-" + rnd(B64URL, 20)
    cases.append(Case("header_map_private_token", private_token,
                      {"request": {"headers": {"PRIVATE-TOKEN": private_token, "User-Agent": "python-gitlab"}}}))
    ghp_as_key = "ghp_" + rnd(ALNUM, 36)
    cases.append(Case("secret_as_json_key", ghp_as_key, {"tokens": {ghp_as_key: {"user": "ci", "scopes": ["repo"]}}}))
    openai_as_key = "sk-proj-" + rnd(B64URL, 40) + "T3BlbkFJ" + rnd(B64URL, 40)
    cases.append(Case("secret_as_json_key", openai_as_key, {openai_as_key: "team-a"}))
    env_value = rnd(ALNUM, 24)
    cases.append(Case("secret_json_value", env_value, {"OPENAI_API_KEY": env_value, "MODEL": "gpt-4o",
                                                       "max_tokens": 4096}))

    # Cloud providers
    add("aws_access_key", "AKIA" + rnd(UPPER[:26] + "234567", 16), "aws_access_key_id = {s}\nregion = us-east-1")
    add("aws_secret_key", rnd(ALNUM + "/+", 40), "export AWS_SECRET_ACCESS_KEY={s}")
    add("aws_session_token", "IQoJb3JpZ2luX2VjE" + rnd(B64, 180), "aws_session_token = {s}")
    pem_block, pem_line = pem("PRIVATE KEY")
    sa = {"type": "service_account", "project_id": "acme-prod", "private_key_id": rnd(HEX, 40),
          "private_key": pem_block + "\n", "client_email": "ci@acme-prod.iam.gserviceaccount.com"}
    cases.append(Case("gcp_service_account", pem_line, sa))
    cases.append(Case("gcp_service_account", pem_line, json.dumps(sa, indent=2)))
    add("google_api_key", "AIza" + rnd(B64URL, 35), "https://maps.googleapis.com/maps/api/js?key={s}")
    add("google_oauth_client_secret", "GOCSPX-" + rnd(B64URL, 28), '"client_secret": "{s}"', "secret GOCSPX: {s}")
    add("google_oauth_access_token", "ya29." + rnd(B64URL, 120), "access token {s} expires in 3599s")
    azure_key = b64(_RNG.randbytes(64))
    add("azure_storage_key", azure_key,
        "DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={s};EndpointSuffix=core.windows.net")
    add("azure_sas_token", rnd(B64, 43).replace("+", "%2B").replace("/", "%2F") + "%3D",
        "https://acme.blob.core.windows.net/logs/app.log?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01&sig={s}")
    add("azure_ad_client_secret", rnd(ALNUM, 3) + "8Q~" + rnd(ALNUM + "_~.-", 34), "AZURE_CLIENT_SECRET={s}",
        "The app registration secret value is {s}")
    add("alibaba_access_key", "LTAI" + rnd(ALNUM, 20), "aliyun configure --access-key-id {s}")
    add("digitalocean_token", "dop_v1_" + rnd(HEX, 64), "doctl auth init -t {s}")
    add("heroku_api_key", "HRKU-AA" + rnd(B64URL, 58), "heroku auth:token -> {s}")
    add("heroku_api_key", str(uuid.UUID(int=_RNG.getrandbits(128))), "HEROKU_API_KEY={s} git push heroku main")
    add("databricks_token", "dapi" + rnd(HEX, 32), "databricks configure --token\nToken: {s}")
    add("cloudflare_api_token", rnd(B64URL, 40), "CLOUDFLARE_API_TOKEN={s} wrangler deploy")
    add("fly_io_token", "fo1_" + rnd(B64URL, 43), "flyctl deploy --access-token {s}")

    # Source hosting, CI, registries
    add("github_token", "ghp_" + rnd(ALNUM, 36), "git remote set-url origin https://{s}@github.com/acme/app.git",
        "my token is {s}")
    add("github_token", "gho_" + rnd(ALNUM, 36), "gh auth status shows {s}")
    add("github_token", "ghs_" + rnd(ALNUM, 36), "GITHUB_TOKEN: {s}")
    add("github_fine_grained_pat", f"github_pat_{rnd(ALNUM, 22)}_{rnd(ALNUM, 59)}", "use {s} for the API")
    add("gitlab_token", "glpat-" + rnd(B64URL, 20), "git clone https://oauth2:{s}@gitlab.com/acme/app.git",
        "GITLAB_TOKEN is {s}")
    add("gitlab_runner_token", "glrt-" + rnd(B64URL, 20), "gitlab-runner register --token {s}")
    add("bitbucket_app_password", "ATBB" + rnd(ALNUM, 32), "bitbucket app password {s}")
    add("npm_token", "npm_" + rnd(ALNUM, 36), "//registry.npmjs.org/:_authToken={s}", "npm token {s} created")
    add("pypi_token", "pypi-AgEIcHlwaS5vcmc" + rnd(B64URL, 70), "[pypi]\n  username = __token__\n  password = {s}",
        "twine upload -p {s} dist/*")
    add("docker_hub_pat", "dckr_pat_" + rnd(B64URL, 27), "docker login -u acme -p {s}", "echo {s} | docker login")
    add("rubygems_key", "rubygems_" + rnd(HEX, 48), "GEM_HOST_API_KEY: {s}")
    add("nuget_key", "oy2" + rnd(LOWER + DIGITS, 43), "dotnet nuget push pkg.nupkg --api-key {s}")
    add("buildkite_token", "bkua_" + rnd(HEX, 40), "buildkite agent token {s}")
    add("sourcegraph_token", "sgp_" + rnd(HEX, 16) + "_" + rnd(HEX, 40), "src login with {s}")
    add("terraform_cloud_token", rnd(ALNUM, 14) + ".atlasv1." + rnd(B64URL, 67), 'token = "{s}"', "TFE token {s}")
    add("pulumi_token", "pul-" + rnd(HEX, 40), "PULUMI_ACCESS_TOKEN={s}")
    add("vault_token", "hvs." + rnd(B64URL, 91), "export VAULT_TOKEN={s}", "vault login {s}")
    add("doppler_token", "dp.pt." + rnd(ALNUM, 43), "doppler configure set token {s}")
    add("postman_api_key", "PMAK-" + rnd(HEX, 24) + "-" + rnd(HEX, 34), "Postman API key: {s}")
    add("atlassian_api_token", "ATATT3xFfGF0" + rnd(B64URL, 170) + "=" + rnd(HEX.upper(), 8),
        "jira login with {s}")
    add("linear_api_key", "lin_api_" + rnd(ALNUM, 40), "LINEAR_API_KEY={s}", "linear key {s}")
    add("notion_token", "ntn_" + rnd(DIGITS, 11) + rnd(ALNUM, 35), "notion integration secret {s}")
    add("notion_token", "secret_" + rnd(ALNUM, 43), "NOTION_TOKEN={s}")
    add("grafana_token", "glsa_" + rnd(ALNUM, 32) + "_" + rnd(HEX, 8), "grafana service account {s}")
    add("newrelic_key", "NRAK-" + rnd(UPPER + DIGITS, 27), "NEW_RELIC_API_KEY={s}", "New Relic user key {s}")
    add("sentry_token", "sntryu_" + rnd(HEX, 64), "sentry-cli login --auth-token {s}")
    add("supabase_token", "sbp_" + rnd(HEX, 40), "supabase login --token {s}")
    add("planetscale_token", "pscale_tkn_" + rnd(B64URL, 43), "planetscale service token {s}")
    add("dynatrace_token", "dt0c01." + rnd(UPPER + DIGITS, 24) + "." + rnd(UPPER + DIGITS, 64), "Api-Token {s}")
    add("datadog_api_key", rnd(HEX, 32), "DD_API_KEY={s} datadog-agent run", '"dd-api-key": "{s}"')
    add("datadog_app_key", rnd(HEX, 40), "DD_APP_KEY={s}", "datadog application_key: {s}")
    add("figma_token", "figd_" + rnd(B64URL, 40), "figma personal token {s}")

    # Payments, commerce, messaging, email
    add("stripe_key", "sk_live_" + rnd(ALNUM, 99), "Stripe.api_key = '{s}'", "stripe key {s}")
    add("stripe_key", "rk_live_" + rnd(ALNUM, 99), "restricted key {s}")
    add("stripe_webhook_secret", "whsec_" + rnd(ALNUM, 32), "STRIPE_WEBHOOK_SECRET={s}")
    add("square_token", "EAAA" + rnd(B64URL, 60), "square access token {s}")
    add("square_token", "sq0csp-" + rnd(B64URL, 43), "square application secret {s}")
    add("shopify_token", "shpat_" + rnd(HEX, 32), "X-Shopify-Access-Token: {s}", "shopify admin token {s}")
    add("shopify_token", "shpss_" + rnd(HEX, 32), "shared secret {s}")
    add("twilio_api_key", "SK" + rnd(HEX, 32), "twilio api:core:keys:create -> sid {s}")
    add("twilio_auth_token", rnd(HEX, 32), "TWILIO_AUTH_TOKEN={s}", "client = Client('AC" + rnd(HEX, 32) + "', '{s}')")
    add("sendgrid_key", "SG." + rnd(B64URL, 22) + "." + rnd(B64URL, 43), "SENDGRID_API_KEY={s}",
        "sendgrid key is {s}")
    add("mailgun_key", "key-" + rnd(HEX, 32), "api:{s} mailgun")
    add("mailgun_key", rnd(HEX, 32) + "-" + rnd(HEX, 8) + "-" + rnd(HEX, 8), "MAILGUN_API_KEY={s}",
        "mailgun private key {s}")
    add("mailchimp_key", rnd(HEX, 32) + "-us" + str(_RNG.randrange(1, 21)), "mailchimp key {s}",
        "MAILCHIMP_API_KEY: {s}")
    add("slack_bot_token", f"xoxb-{rnd(DIGITS, 12)}-{rnd(DIGITS, 13)}-{rnd(ALNUM, 24)}", "SLACK_BOT_TOKEN={s}",
        "slack says {s}")
    add("slack_user_token", f"xoxp-{rnd(DIGITS, 12)}-{rnd(DIGITS, 12)}-{rnd(DIGITS, 13)}-{rnd(HEX, 32)}",
        "user token {s}")
    add("slack_app_token", f"xapp-1-A{rnd(UPPER + DIGITS, 10)}-{rnd(DIGITS, 13)}-{rnd(HEX, 64)}", "app token {s}")
    add("slack_webhook", f"T{rnd(UPPER + DIGITS, 8)}/B{rnd(UPPER + DIGITS, 10)}/{rnd(ALNUM, 24)}",
        "https://hooks.slack.com/services/{s}")
    add("discord_bot_token", b64(str(_RNG.randrange(10**17, 10**18)).encode()).rstrip("=") + "."
        + rnd(B64URL, 6) + "." + rnd(B64URL, 38), "client.run('{s}')", "discord bot token {s}")
    add("discord_webhook", f"{rnd(DIGITS, 18)}/{rnd(B64URL, 68)}", "https://discord.com/api/webhooks/{s}")
    add("telegram_bot_token", f"{rnd(DIGITS, 10)}:AA{rnd(B64URL, 33)}", "https://api.telegram.org/bot{s}/getMe",
        "TELEGRAM_BOT_TOKEN={s}")
    add("twitter_bearer_token", "AAAAAAAAAAAAAAAAAAAAA" + rnd(ALNUM, 20) + "%2B" + rnd(ALNUM, 20) + "%3D"
        + rnd(ALNUM, 40), "TWITTER_BEARER_TOKEN={s}", "twitter bearer {s}")
    add("facebook_access_token", "EAACEdEose0cBA" + rnd(ALNUM, 120), "graph api token {s}")
    add("firebase_fcm_key", "AAAA" + rnd(B64URL, 7) + ":APA91b" + rnd(B64URL, 134), "fcm server key={s}")
    add("mapbox_token", "sk.eyJ1Ijoi" + rnd(B64URL, 50) + "." + rnd(B64URL, 22), "MAPBOX_SECRET={s}", "mapbox {s}")

    # AI providers
    add("openai_api_key", "sk-proj-" + rnd(B64URL, 74) + "T3BlbkFJ" + rnd(B64URL, 74), "OPENAI_API_KEY={s}",
        "client = OpenAI(api_key='{s}')")
    add("openai_api_key", "sk-" + rnd(ALNUM, 48), "my old openai key {s}")
    add("openai_api_key", "sk-svcacct-" + rnd(B64URL, 74) + "T3BlbkFJ" + rnd(B64URL, 74), "service account {s}")
    add("anthropic_api_key", "sk-ant-api03-" + rnd(B64URL, 93) + "AA", "x-api-key: {s}", "ANTHROPIC_API_KEY={s}")
    add("huggingface_token", "hf_" + rnd(LOWER + UPPER, 34), "huggingface-cli login --token {s}",
        "Use {s} to download the gated model.")
    add("groq_key", "gsk_" + rnd(ALNUM, 52), "groq key {s}")
    add("replicate_token", "r8_" + rnd(ALNUM, 37), "REPLICATE_API_TOKEN={s}", "replicate {s}")
    add("perplexity_key", "pplx-" + rnd(ALNUM, 48), "perplexity key {s}")
    add("xai_key", "xai-" + rnd(ALNUM, 80), "XAI_API_KEY={s}")
    add("openrouter_key", "sk-or-v1-" + rnd(HEX, 64), "openrouter {s}")
    add("langsmith_key", "lsv2_pt_" + rnd(HEX, 32) + "_" + rnd(HEX, 10), "LANGCHAIN_API_KEY={s}", "langsmith {s}")
    add("cohere_key", rnd(ALNUM, 40), "COHERE_API_KEY={s}", 'cohere.Client(api_key="{s}")')

    # Keys, passwords and framework secrets
    for label, context in (("RSA PRIVATE KEY", "id_rsa:\n{}\n"), ("OPENSSH PRIVATE KEY", "cat ~/.ssh/id_ed25519\n{}")):
        block, body_line = pem(label)
        cases.append(Case("private_key_pem", body_line, context.format(block)))
    add("private_key_hex", "0x" + rnd(HEX, 64), "PRIVATE_KEY={s}\nRPC_URL=https://rpc.example.org")
    add("private_key_hex", rnd(HEX, 64), "ETH_PRIVATE_KEY: {s}", 'wallet = Account.from_key("{s}")  # private key')
    add("age_secret_key", "AGE-SECRET-KEY-1" + rnd("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58), "# created: 2026\n{s}")
    add("secret_key_base", rnd(HEX, 128), "production:\n  secret_key_base: {s}", "SECRET_KEY_BASE={s} rails s")
    add("django_secret_key", "django-insecure-" + rnd(ALNUM + "!@#%^&*(-_=+)", 50), "SECRET_KEY = '{s}'")
    add("jwt", jwt(), "the id_token was {s}", "Bearer {s}")
    add("database_url", rnd(ALNUM, 20), "DATABASE_URL=postgres://app:{s}@db.internal:5432/app",
        "mongodb+srv://svc:{s}@cluster0.x1y2z.mongodb.net/prod")
    add("password_assignment", rnd(ALNUM + "!@#%", 14), 'DB_PASSWORD="{s}"', "mysql:\n  password: {s}\n",
        '{{"user": "root", "password": "{s}"}}')
    add("password_assignment", rnd(ALNUM, 12) + "7", "The password is {s}", "password {s}")
    add("netrc_password", rnd(ALNUM, 20), "machine api.heroku.com\n  login me@acme.test\n  password {s}")
    add("generic_secret_assignment", rnd(ALNUM, 32), "JWT_SECRET={s}", "client_secret: {s}", "app.secret = '{s}'")
    add("generic_secret_assignment", rnd(B64, 44), "ENCRYPTION_KEY={s}", "signing_key: {s}", "MASTER_KEY={s}")
    return cases


# ---- look-alikes: texts and structures that resemble a secret and must come out unchanged

def _look_alikes() -> list[Any]:
    png = b64(b"\x89PNG\r\n\x1a\n" + bytes(40) + _RNG.randbytes(900))
    sha = rnd(HEX, 40)
    texts: list[Any] = [
        # prose
        "The secret: always write the test first.",
        "Secret: Remember to run the migrations before deploying.",
        "The token limit is 4096 for this model.",
        "Password: choose something long and unique.",
        "Authorization: Bearer tokens are sent in the header.",
        "Basic authentication is deprecated; use OAuth instead.",
        "The Bearer scheme (RFC 6750) carries an access token.",
        "Our API key rotation policy: every 90 days, no exceptions.",
        "Cookie: a small piece of data stored by the browser.",
        "the private key never leaves the HSM",
        "Set the password in the vault, not in the repository.",
        "secret_key_base is generated by `bin/rails secret` at deploy time",
        "Twilio and SendGrid keys are rotated monthly.",
        "See SG.1 and SG.2 of the style guide.",
        "npm_config_cache and npm_package_version are set by npm.",
        "hf_hub_download(repo_id='bert-base-uncased', filename='config.json')",
        "glpat- tokens expire after a year",
        "Passwords must have at least 12 characters.",
        "token: the one you created yesterday",
        "api_key: see the team vault",
        # model parameters and usage
        "max_tokens: 4096",
        '{"max_tokens": 1024, "max_completion_tokens": 2048, "top_p": 0.9}',
        "usage: prompt_tokens=1834 completion_tokens=211 total_tokens=2045",
        "tokenizer = AutoTokenizer.from_pretrained('gpt2'); token_ids = tokenizer.encode(text)",
        # ids, hashes, digests
        f"commit {sha}\nAuthor: Alice <alice@example.com>",
        f"Merge {rnd(HEX, 7)}..{rnd(HEX, 7)} fast-forward",
        f"git rev-parse HEAD -> {rnd(HEX, 40)}",
        f"request_id: {uuid.UUID(int=_RNG.getrandbits(128))}",
        f"trace_id={rnd(HEX, 32)} span_id={rnd(HEX, 16)}",
        f"sha256:{rnd(HEX, 64)}",
        f"image: ghcr.io/acme/api@sha256:{rnd(HEX, 64)}",
        f'"integrity": "sha512-{b64(_RNG.randbytes(64))}"',
        f"golang.org/x/text v0.14.0 h1:{b64(_RNG.randbytes(32))}",
        f"md5: {rnd(HEX, 32)}  file.tar.gz",
        f"ETag: W/\"{rnd(HEX, 32)}\"",
        f"chatcmpl-{rnd(ALNUM, 29)} finished with stop",
        f"tool call call_{rnd(ALNUM, 24)} returned",
        f"toolu_01{rnd(ALNUM, 22)} and msg_01{rnd(ALNUM, 22)}",
        f"Stripe objects: cus_{rnd(ALNUM, 14)}, pi_{rnd(ALNUM, 24)}, ch_{rnd(ALNUM, 24)}",
        "pk_test_TYooMQauvdEDq54NiTphI7jx is the publishable test key from the docs",
        f"Slack channel C{rnd(UPPER + DIGITS, 10)}, user U{rnd(UPPER + DIGITS, 10)}",
        f"Discord snowflake {rnd(DIGITS, 18)}",
        f"eth address 0x{rnd(HEX, 40)}",
        f"tx_hash: 0x{rnd(HEX, 64)}",
        f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{rnd(B64, 43)} alice@laptop",
        f"arn:aws:lambda:us-east-1:{rnd(DIGITS, 12)}:function:resize-images",
        "https://s3.amazonaws.com/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600",
        f"data:image/png;base64,{png}",
        f'<img src="data:image/jpeg;base64,{b64(bytes(30) + _RNG.randbytes(600))}">',
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0  (a JWT without its signature)",
        f"-----BEGIN PUBLIC KEY-----\n{b64(_RNG.randbytes(48))}\n-----END PUBLIC KEY-----",
        f"-----BEGIN CERTIFICATE-----\n{b64(_RNG.randbytes(48))}\n-----END CERTIFICATE-----",
        f"version {_RNG.randrange(1, 9)}.{_RNG.randrange(30)}.{_RNG.randrange(30)} built at 2026-01-31T12:00:00Z",
        f"uuid4: {uuid.UUID(int=_RNG.getrandbits(128))}",
        f"the build id is {rnd(DIGITS, 10)}:{rnd(DIGITS, 4)}",
        # env references and templates
        'curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com/user',
        'curl -H "Authorization: Bearer ${OPENAI_API_KEY}" https://api.openai.com/v1/models',
        "Authorization: Bearer ${{ secrets.GH_TOKEN }}",
        "AccountKey=$(az storage account keys list -n acme --query [0].value -o tsv)",
        "PRIVATE_KEY=${PRIVATE_KEY}",
        "secret_key_base: <%= ENV['SECRET_KEY_BASE'] %>",
        "export TWILIO_AUTH_TOKEN=$(vault kv get -field=token secret/twilio)",
        "password: ${DB_PASSWORD}",
        'api_key = os.environ["OPENAI_API_KEY"]',
        "token = process.env.NPM_TOKEN",
        "Cookie: session=${SESSION_ID}",
        "SENDGRID_API_KEY={{ sendgrid_api_key }}",
        # placeholders
        "Authorization: Bearer <YOUR_TOKEN>",
        "Authorization: Bearer YOUR_API_KEY",
        "Authorization: Basic <base64(user:password)>",
        "OPENAI_API_KEY=sk-...",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "HF_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "npm_TOKEN_GOES_HERE",
        "password: ********",
        "api_key: YOUR_API_KEY_HERE",
        "AccountKey=<storage-account-key>",
        "Cookie: theme=dark; lang=en",
        "PRIVATE_KEY=0x...",
        "token: REPLACE_ME",
        "SECRET_KEY=changeme",
        # code
        'headers = {"Authorization": f"Bearer {token}"}',
        'headers["Authorization"] = "Bearer " + access_token',
        "req.headers.authorization = `Bearer ${session.accessToken}`",
        'session.cookies.set("sessionid", session_id)',
        "def get_secret_key_base(self) -> str:",
        "private_key = load_pem_private_key(data, password=None)",
        "secret = secrets.token_urlsafe(32)",
        "password = getpass.getpass('Password: ')",
        "token = jwt.encode(payload, key, algorithm='HS256')",
        "if api_key is None: raise ValueError('missing api key')",
        "const token = await getToken({ scopes: ['read'] })",
        "auth = HTTPBasicAuth(username, password)",
        "client_secret = settings.GOOGLE_CLIENT_SECRET",
        "AWS_SECRET_ACCESS_KEY: !Ref SecretAccessKey",
        "for token in tokens: counts[token] += 1",
        "Cookie: ${cookieHeader}",
        # structures
        {"headers": {"Authorization": "Bearer ${TOKEN}", "Accept": "application/json"}},
        {"headers": {"Content-Type": "application/json", "User-Agent": "curl/8.5.0", "Accept-Encoding": "gzip"}},
        {"usage": {"prompt_tokens": 12, "completion_tokens": 7}, "max_tokens": 4096, "token": " Hello"},
        {"sha": rnd(HEX, 40), "parents": [{"sha": rnd(HEX, 40)}], "tree": {"sha": rnd(HEX, 40)}},
        {"id": str(uuid.UUID(int=_RNG.getrandbits(128))), "object": "file", "bytes": 1024, "purpose": "fine-tune"},
        {"password": "", "password_confirmation": "", "remember_me": True},
        {"api_key": "<your key here>", "secret": "${SECRET}", "token": None},
        {"logprobs": {"content": [{"token": "ization", "logprob": -0.2}, {"token": " the", "logprob": -1.1}]}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"cookies": {"theme": "dark", "lang": "en"}, "authorization": None},
        {"tokens": {"input": 1200, "output": 300}, "secret_name": "prod/db/password"},
    ]
    return texts


SECRET_CASES: list[Case] = _secret_cases()
LOOK_ALIKE_CASES: list[Any] = _look_alikes()


# ---- the five placements of an exchange

def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2)


def _as_object(value: Any) -> Any:
    return value if not isinstance(value, str) else {"command": value}


PLACEMENTS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "user_message": lambda v: {"messages": [{"role": "system", "content": "You are a coding agent."},
                                            {"role": "user", "content": _as_text(v)}], "response": "ok"},
    "response": lambda v: {"messages": [{"role": "user", "content": "go"}], "response": _as_text(v)},
    "openai_tool_call_arguments": lambda v: {
        "messages": [{"role": "user", "content": "run it"},
                     {"role": "assistant", "content": None, "tool_calls": [{
                         "id": "call_Qx81", "type": "function",
                         "function": {"name": "shell", "arguments": json.dumps(_as_object(v))}}]}],
        "response": "done"},
    "nested_response_object": lambda v: {
        "messages": [{"role": "user", "content": "status?"}],
        "response": {"id": "resp_1", "output": [{"type": "message", "content": [
            {"type": "output_text", "text": "here", "annotations": []}]}], "metadata": {"debug": {"seen": v}}}},
    "anthropic_tool_use_input": lambda v: {
        "messages": [{"role": "user", "content": "do it"},
                     {"role": "assistant", "content": [{"type": "text", "text": "Running."}, {
                         "type": "tool_use", "id": "toolu_01", "name": "bash", "input": _as_object(v)}]}],
        "response": "ok"},
}


def strings_in(value: Any) -> list[str]:
    """Every string of a JSON structure (keys included), and of JSON documents held in strings."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.append(node)
            if node[:1] in "{[":
                with contextlib.suppress(ValueError):
                    walk(json.loads(node))
        elif isinstance(node, dict):
            for key, item in node.items():
                walk(key)
                walk(item)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(value)
    return found


def leaked(needle: str, redacted: Any) -> bool:
    return any(needle in s for s in strings_in(redacted))


@dataclass
class Figures:
    """Per secret type: placements redacted / total; per look-alike placement: changed / total."""

    redacted: dict[str, int]
    total: dict[str, int]
    changed: list[tuple[str, str]]  # (placement, look-alike text) of every changed look-alike
    look_alike_total: int

    @property
    def recall(self) -> float:
        return sum(self.redacted.values()) / sum(self.total.values())

    @property
    def false_positive_rate(self) -> float:
        return len(self.changed) / self.look_alike_total


def measure(redact_json: Callable[[Any], tuple[Any, int]]) -> Figures:
    """Run `redact_json` over every placement of every case."""
    redacted: dict[str, int] = {}
    total: dict[str, int] = {}
    for case in SECRET_CASES:
        for place in PLACEMENTS.values():
            out, _ = redact_json(place(case.value))
            total[case.kind] = total.get(case.kind, 0) + 1
            redacted[case.kind] = redacted.get(case.kind, 0) + (not leaked(case.needle, out))
    changed: list[tuple[str, str]] = []
    count = 0
    for value in LOOK_ALIKE_CASES:
        for name, place in PLACEMENTS.items():
            exchange = place(value)
            out, _ = redact_json(exchange)
            count += 1
            if out != exchange:
                changed.append((name, _as_text(value)[:120]))
    return Figures(redacted, total, changed, count)
