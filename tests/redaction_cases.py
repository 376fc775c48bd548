"""Secrets and look-alikes for the redaction tests: realistic fake secrets generated from a fixed
seed, each in the text it typically appears in, and text that resembles a secret but is not one.

Shared by the redactor's own tests and the conversation tools' tests (what is stored is redacted).
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid

RNG = random.Random(20240607)
UPPER_DIGITS = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "_-"
HEX = "0123456789abcdef"


def rand(alphabet: str, n: int) -> str:
    """A random string with at least one digit and one letter when the alphabet has both."""
    while True:
        s = "".join(RNG.choice(alphabet) for _ in range(n))
        has_digit = any(c.isdigit() for c in alphabet)
        has_alpha = any(c.isalpha() for c in alphabet)
        if (not has_digit or any(c.isdigit() for c in s)) and (not has_alpha or any(c.isalpha() for c in s)):
            return s


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_jwt() -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": str(RNG.randrange(10**9)), "iat": 1717000000, "scope": "read"}).encode())
    return f"{header}.{payload}.{b64url(RNG.randbytes(32))}"


def pem(kind: str, lines: int = 6, newline: str = "\n", headers: str = "") -> str:
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    body = [base64.b64encode(RNG.randbytes(48)).decode() for _ in range(lines)]
    body.append(base64.b64encode(RNG.randbytes(10)).decode())  # short, padded last line
    return newline.join([f"-----BEGIN {label}-----", *([headers] if headers else []), *body, f"-----END {label}-----"])


def openai_project_key(prefix: str) -> str:
    return f"sk-{prefix}-{rand(B64URL, 74)}T3BlbkFJ{rand(B64URL, 74)}"


# (rule, secret, text with {s} where the secret goes). Only the secret is replaced; the rest of the
# text must come out intact.
SECRETS: list[tuple[str, str, str]] = [
    ("aws_access_key", "AKIA" + rand(UPPER_DIGITS, 16), "Use access key {s} for the nightly backup job."),
    ("aws_access_key", "ASIA" + rand(UPPER_DIGITS, 16), "The STS session returned AccessKeyId={s}, expiring soon."),
    ("aws_secret_key", rand(ALNUM + "/+", 40), "[default]\naws_secret_access_key = {s}\nregion = eu-west-1"),
    ("aws_secret_key", rand(ALNUM + "/+", 40), "export AWS_SECRET_ACCESS_KEY={s} && aws s3 ls"),
    ("aws_secret_key", rand(ALNUM + "/+", 40), '{{"Credentials": {{"SecretAccessKey": "{s}", "Expiration": "x"}}}}'),
    ("aws_secret_key", rand(ALNUM + "/+", 40), "AWS Secret Access Key [None]: {s}\nDefault region name [None]:"),
    ("aws_secret_key", rand(ALNUM + "/+", 40), "My aws secret key is {s} - please keep it safe."),
    ("github_token", "ghp_" + rand(ALNUM, 36), "git clone https://{s}@github.com/acme/private-repo.git failed"),
    ("github_token", "gho_" + rand(ALNUM, 36), "The OAuth app gave me {s}."),
    ("github_token", "ghu_" + rand(ALNUM, 36), "user-to-server token ({s}) expired"),
    ("github_token", "ghs_" + rand(ALNUM, 36), "Actions injected {s} into the job."),
    ("github_token", "ghr_" + rand(ALNUM, 36), "refresh with {s} next time"),
    ("github_token", f"github_pat_{rand(ALNUM, 22)}_{rand(ALNUM, 59)}", "Fine-grained PAT: {s} (read-only)."),
    ("openai_api_key", openai_project_key("proj"), "client = OpenAI(api_key='{s}')  # from the dashboard"),
    ("openai_api_key", openai_project_key("svcacct"), "The service account key {s} belongs to CI."),
    ("openai_api_key", openai_project_key("admin"), "Admin key: {s}"),
    ("openai_api_key", "sk-" + rand(ALNUM, 48), "curl -H 'Authorization: Bearer {s}' https://api.openai.com/v1/models"),
    ("anthropic_api_key", f"sk-ant-api03-{rand(B64URL, 93)}AA", "export ANTHROPIC_API_KEY={s}\npython app.py"),
    ("anthropic_api_key", f"sk-ant-admin01-{rand(B64URL, 93)}AA", "Use the admin key {s} for org settings."),
    (
        "slack_token",
        f"xoxb-{rand(string.digits, 12)}-{rand(string.digits, 13)}-{rand(ALNUM, 24)}",
        "SLACK_BOT_TOKEN is {s}; the bot joins #general.",
    ),
    (
        "slack_token",
        f"xoxp-{rand(string.digits, 12)}-{rand(string.digits, 12)}-{rand(string.digits, 13)}-{rand(HEX, 32)}",
        "user token {s} has the chat:write scope",
    ),
    (
        "slack_webhook",
        f"T{rand(UPPER_DIGITS, 8)}/B{rand(UPPER_DIGITS, 10)}/{rand(ALNUM, 24)}",
        "Post alerts to https://hooks.slack.com/services/{s} when the job fails.",
    ),
    ("stripe_key", "sk_live_" + rand(ALNUM, 24), "stripe.api_key = {s}"),
    ("stripe_key", "sk_test_51" + rand(ALNUM, 97), "Test mode key {s} works."),
    ("stripe_key", "rk_live_" + rand(ALNUM, 24), "A restricted key {s} for reporting."),
    ("stripe_key", "rk_test_" + rand(ALNUM, 30), "restricted test key {s}."),
    ("stripe_key", "pk_live_" + rand(ALNUM, 24), "Publishable live key {s} in checkout.js"),
    (
        "google_api_key",
        "AIza" + rand(B64URL, 35),
        "https://maps.googleapis.com/maps/api/geocode/json?key={s}&address=Paris",
    ),
    ("jwt", fake_jwt(), "Authorization: Bearer {s}\nAccept: application/json"),
    ("jwt", fake_jwt(), "the cookie was session={s}; Path=/; HttpOnly"),
    ("private_key", pem("RSA"), "Here is the deploy key:\n{s}\nPlease rotate it."),
    ("private_key", pem("EC"), "ec.pem contains\n{s}\n(end of file)"),
    ("private_key", pem("OPENSSH"), "~/.ssh/id_ed25519:\n{s}\n"),
    ("private_key", pem("ENCRYPTED"), "Encrypted PKCS#8:\n{s}\nPassphrase elsewhere."),
    ("private_key", pem(""), "PKCS#8 key:\r\n{s}\r\nthanks"),
    (
        "private_key",
        pem("RSA", headers="Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89"),
        "legacy encrypted:\n{s}\nok",
    ),
    ("private_key", pem("", newline="\\n"), '{{"type": "service_account", "private_key": "{s}\\n", "x": 1}}'),
    ("database_url", rand(ALNUM, 16), "DATABASE_URL=postgresql://app_user:{s}@db.internal:5432/app?sslmode=require"),
    ("database_url", rand(ALNUM, 12), "connecting to postgres://admin:{s}@10.0.0.5/prod"),
    ("database_url", "Zq9", "short one: postgres://app:{s}@localhost/app"),
    ("database_url", rand(ALNUM, 14) + "@" + rand(ALNUM, 4), "mysql://root:{s}@mysql.local:3306/shop failed"),
    ("database_url", rand(ALNUM, 20), "MONGO_URI=mongodb+srv://svc:{s}@cluster0.ab1cd.mongodb.net/db?retryWrites=true"),
    ("database_url", rand(ALNUM, 18), "REDIS_URL=redis://:{s}@cache.internal:6379/0"),
    ("database_url", rand(ALNUM, 18), "broker_url = 'amqp://guest:{s}@rabbitmq:5672/vhost'"),
    ("database_url", rand(ALNUM, 18), 'engine = create_engine("postgresql+psycopg://me:{s}@localhost:5433/dev")'),
    ("password_assignment", "Tr0ub4dor&3x", 'The config had password="{s}" in plain text.'),
    ("password_assignment", rand(ALNUM, 12), '{{"username": "alice", "password": "{s}", "remember": true}}'),
    ("password_assignment", rand(ALNUM, 12), "DB_PASSWORD={s}\nDB_HOST=localhost"),
    ("password_assignment", rand(ALNUM, 10), "mysql:\n  passwd: {s}\n  user: root"),
    ("password_assignment", rand(ALNUM, 10), "pwd={s};uid=sa;Server=tcp:db,1433"),
    ("password_assignment", rand(ALNUM, 24), "secret: {s}\nkind: Opaque"),
    ("password_assignment", rand(B64URL, 32), "client_secret = '{s}'"),
    ("password_assignment", rand(ALNUM, 32), "api_key: {s}  # rotate monthly"),
    ("password_assignment", rand(HEX, 32), "const APIKEY = '{s}';"),
    ("password_assignment", rand(ALNUM, 30), "x-api-key: {s}"),
    ("password_assignment", rand(ALNUM, 40), "access_token={s}&token_type=bearer"),
    ("password_assignment", rand(ALNUM, 40), "auth_token: {s}"),
    ("huggingface_token", "hf_" + rand(ALNUM, 34), "HF_TOKEN={s} huggingface-cli login"),
    ("password_assignment", rand(ALNUM, 20), "redis.set(token={s})"),
    ("password_assignment", rand(ALNUM, 16), "settings.SECRET_KEY = 'django-insecure-{s}'"),
    ("password_assignment", "correct horse battery staple", "passphrase: '{s}'"),
    ("password_assignment", rand(ALNUM, 10), "user[password_confirmation]={s}&commit=Save"),
    ("password_assignment", rand(ALNUM, 10), 'config["db_password"] = "{s}"'),
    ("password_assignment", rand(ALNUM, 14), 'payload = "{{\\"password\\": \\"{s}\\"}}"'),
    ("password_assignment", rand(ALNUM, 14), "$db = new PDO($dsn, $user, 'x', ['password' => '{s}']);"),
]


# ---- look-alikes: must come out exactly as they went in

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + RNG.randbytes(600)).decode()
_JSON_DATA_URL = base64.b64encode(json.dumps({"alg": "none", "payload": {"a": 1}}).encode()).decode()

LOOK_ALIKES: list[str] = [
    "Fixed in commit 3f786850e387550fdab836ed7e6dc881de23001b, see the changelog.",
    "git checkout 3f78685 && git log -1",
    "commit: 3f786850e387550fdab836ed7e6dc881de23001b",
    f"request id {uuid.UUID(int=RNG.getrandbits(128))} failed",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    'ETag: "d41d8cd98f00b204e9800998ecf8427e"',
    "Please reset your password in settings.",
    "The password field is required.",
    "password: ",
    "Password:\nPlease choose a strong one.",
    "password=",
    "password = \nuser = bob",
    'password=""',
    "Forgot your password? Click the link; your token expires in 10 minutes.",
    "max_tokens: 4096",
    '{"model": "gpt-4o", "max_tokens": 4096, "temperature": 0.2}',
    "prompt_tokens: 1234567, completion_tokens: 89, total_tokens: 1234656",
    "num_tokens = 12345678",
    "token: 4096",
    "token_count=1234567",
    "token_type: bearer",
    "tokenizer: cl100k_base",
    'eos_token: "<|endoftext|>"',
    'tokenizer.pad_token = "[PAD]"',
    '{"token": " Hello", "logprob": -0.0012, "bytes": [32, 72, 101]}',
    '{"token": "ization", "logprob": -1.5}',
    f'<img src="data:image/png;base64,{PNG}">',
    f"data:application/json;base64,{_JSON_DATA_URL}",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    "arn:aws:iam::123456789012:role/service-role/LambdaExecutionRole",
    "arn:aws:s3:::my-company-logs/2024/06/01/app.log",
    "s3://my-company-logs/2024/06/01/app.log",
    "https://my-bucket.s3.us-east-1.amazonaws.com/reports/q2.pdf?versionId=3HL4kqtJlcpXroDTDmJ",
    "pip install scikit-learn  # a.k.a. sk-learn",
    "the sk- prefix and sk-ant- prefix identify keys",
    "sk-proj-management-overview-and-roadmap-document",
    "xoxo-hugs-and-kisses-from-the-team",
    "ghp_short and github_pat_ are prefixes",
    "AKIA1234 is too short to be a key",
    "postgresql://user@db.example.com/app",
    "postgresql://localhost:5432/app",
    "http://localhost:8080/api/v1/items?page=2",
    "http://[::1]:8080/health",
    "Contact alice.smith@example.com or mailto:bob@example.org",
    "git@github.com:acme/widgets.git and ssh://git@github.com/acme/widgets",
    'conn = connect(host=host, password=os.environ["DB_PASSWORD"])',
    "password = os.getenv('DB_PASSWORD')",
    'db_password = os.environ.get("DB_PASSWORD", "")',
    "api_key=settings.openai_api_key",
    "client = Client(api_key=self.api_key, token=self.token)",
    "connect(user=user, password=password)",
    "token = access_token",
    "password: ${DB_PASSWORD}",
    'password: "{{ secrets.DB_PASSWORD }}"',
    "password = getpass.getpass()",
    "def login(username: str, password: str) -> Token:",
    "api_key: Optional[str] = None",
    "api_key: SecretStr",
    "PWD=/home/alice/projects/aletheia",
    "password: ********",
    "password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256",
    'password: "<your-password-here>"',
    'password: "[REDACTED]"',
    "postgresql://app:***@db.internal:5432/app",
    "postgresql://app:${PGPASSWORD}@db.internal:5432/app",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUD\n-----END CERTIFICATE-----",
    "password_reset_url: https://example.com/reset",
    "password_hash: $2b$12$KIXQJ8z1xG5p0e0eQ5Zs1uO1q9vL0w9fJ8Qd0wzvR0C1Q2kY3mG6a",
    "secret_name: prod/db/credentials",
    "Top secret: the launch is on Monday",
    "Stripe test card 4242 4242 4242 4242, pk_test_TYooMQauvdEDq54NiTphI7jx",
    "Released v1.2.3 at 2024-06-01T12:00:00Z",
    r"C:\Users\alice\AppData\Local\Temp",
    "[REDACTED:openai_api_key] stays as it is",
]
