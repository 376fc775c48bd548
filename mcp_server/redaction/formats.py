"""Secret token formats of the major providers, as data for mcp_server.redact.

Each entry is a token whose shape alone identifies it: a fixed prefix (or infix) and a body of a
known alphabet and length, as the providers document them and as the public rule sets of secret
scanners (gitleaks / betterleaks, Kingfisher, detect-secrets) describe them. Secrets without such a
shape (a 40-character AWS secret, a 32-hex Datadog key, a password) are found by the context
rules in mcp_server.redact instead (`aws_secret_key`, `password_assignment`, the HTTP headers).

A format is (rule name, regular expression, anchors, anchor offset, group):
* the expression is wrapped in token boundaries (no letter, digit, `_` or `-` on either side);
* `anchors` are literal strings every match contains, `offset` characters after its start (0: it
  starts with one; several offsets when the part before the anchor varies in length), so the
  expression is only tried where an anchor occurs (mcp_server.redact.Rule);
* `group` is the part replaced (0: the whole token).
Every repetition is bounded (600 characters at most: no real token is longer), so that a text made
of one prefix repeated (`sk-proj-sk-proj-...`) costs linear time, not quadratic.
"""

from __future__ import annotations

TokenFormat = tuple[str, str, tuple[str, ...], int | tuple[int, ...], int | str]

_A = "A-Za-z0-9"
_U = r"A-Za-z0-9_\-"  # base64url
_H = "a-f0-9"

TOKEN_FORMATS: tuple[TokenFormat, ...] = (
    # AI providers
    ("anthropic_api_key", rf"sk-ant-(?:api|admin|oat|ort|sid)\d\d-[{_U}]{{32,600}}", ("sk-ant-",), 0, 0),
    ("openrouter_api_key", rf"sk-or-v1-[{_H}]{{64}}", ("sk-or-v1-",), 0, 0),
    # Project / service-account / admin keys are long base64url; legacy keys are `sk-` + 48 alnum.
    # A digit is required so `sk-learn`-style words never match.
    ("openai_api_key", rf"sk-(?:(?:proj|svcacct|admin|None)-(?=[{_U}]{{0,600}}?[0-9])[{_U}]{{32,600}}"
                       rf"|(?=[A-Za-z]{{0,600}}?[0-9])[{_A}]{{32,600}})", ("sk-",), 0, 0),
    ("huggingface_token", rf"(?:hf|api_org)_[{_A}]{{30,600}}", ("hf_", "api_org_"), 0, 0),
    ("groq_api_key", rf"gsk_[{_A}]{{48,600}}", ("gsk_",), 0, 0),
    ("replicate_api_token", rf"r8_[{_A}]{{37}}", ("r8_",), 0, 0),
    ("perplexity_api_key", rf"pplx-[{_A}]{{48}}", ("pplx-",), 0, 0),
    ("xai_api_key", rf"xai-[{_A}]{{70,600}}", ("xai-",), 0, 0),
    ("langsmith_api_key", rf"lsv2_(?:pt|sk)_[{_H}]{{32}}_[{_H}]{{10}}", ("lsv2_",), 0, 0),
    # Source hosting, CI/CD, package registries
    ("github_token", rf"(?:gh[pousr]_[{_A}]{{36,255}}|github_pat_[{_A}]{{22,600}}_[{_A}]{{59,600}})",
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), 0, 0),
    ("gitlab_token", rf"gl(?:pat|dt|rt|ptt|ft|imt|oas|cbt|soat|ffct|agent)-[{_U}.]{{20,600}}",
     ("gl",), 0, 0),
    ("bitbucket_app_password", rf"ATBB[{_A}_=.-]{{32,600}}", ("ATBB",), 0, 0),
    ("atlassian_api_token", rf"AT(?:ATT|CTT)3[{_U}=]{{150,600}}", ("ATATT3", "ATCTT3"), 0, 0),
    ("npm_token", rf"npm_[{_A}]{{36}}", ("npm_",), 0, 0),
    ("pypi_token", rf"pypi-AgEIcHlwaS5vcmc[{_U}]{{50,600}}", ("pypi-AgEIcHlwaS5vcmc",), 0, 0),
    ("docker_hub_token", rf"dckr_(?:pat|oat)_[{_U}]{{27,600}}", ("dckr_pat_", "dckr_oat_"), 0, 0),
    ("rubygems_api_key", rf"rubygems_[{_H}]{{48}}", ("rubygems_",), 0, 0),
    ("nuget_api_key", r"oy2[a-z0-9]{43}", ("oy2",), 0, 0),
    ("buildkite_token", rf"bkua_[{_H}]{{40}}", ("bkua_",), 0, 0),
    ("sourcegraph_token", rf"sgp_(?:[{_H}]{{16}}_)?[{_H}]{{40}}", ("sgp_",), 0, 0),
    ("terraform_cloud_token", rf"[{_A}]{{14}}\.atlasv1\.[{_U}=]{{60,70}}", (".atlasv1.",), 14, 0),
    ("pulumi_token", rf"pul-[{_H}]{{40}}", ("pul-",), 0, 0),
    ("vault_token", rf"hv[sbr]\.[{_U}]{{24,600}}", ("hvs.", "hvb.", "hvr."), 0, 0),
    ("doppler_token", rf"dp\.(?:pt|st|ct|scim|audit|sa)\.[{_A}]{{40,44}}", ("dp.",), 0, 0),
    ("postman_api_key", rf"PMAK-[{_H}]{{24}}-[{_H}]{{34}}", ("PMAK-",), 0, 0),
    ("linear_api_key", rf"lin_(?:api|oauth)_[{_A}]{{40}}", ("lin_api_", "lin_oauth_"), 0, 0),
    ("notion_token", rf"(?:ntn_\d{{11}}[{_A}]{{35}}|secret_[{_A}]{{43}})", ("ntn_", "secret_"), 0, 0),
    ("grafana_token", rf"(?:glsa_[{_A}]{{32}}_[{_H}]{{8}}|glc_[{_A}+/]{{32,600}}={{0,2}})", ("glsa_", "glc_"), 0, 0),
    ("newrelic_key", rf"NR(?:AK|AA|II)-[{_A}]{{27}}", ("NRAK-", "NRAA-", "NRII-"), 0, 0),
    ("sentry_token", rf"sntry[us]_[{_A}_=+/.-]{{40,600}}", ("sntryu_", "sntrys_"), 0, 0),
    ("supabase_token", rf"sbp_[{_H}]{{40}}", ("sbp_",), 0, 0),
    ("planetscale_token", rf"pscale_(?:tkn|pw|oauth)_[{_U}.=]{{32,64}}", ("pscale_",), 0, 0),
    ("dynatrace_token", r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}", ("dt0c01.",), 0, 0),
    ("figma_token", rf"figd_[{_U}]{{40}}", ("figd_",), 0, 0),
    ("databricks_token", rf"dapi[{_H}]{{32}}(?:-\d)?", ("dapi",), 0, 0),
    # Cloud providers
    ("aws_access_key", r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}", ("AKIA", "ASIA", "ABIA", "ACCA"), 0, 0),
    ("google_api_key", rf"AIza[{_U}]{{35}}", ("AIza",), 0, 0),
    ("google_oauth_client_secret", rf"GOCSPX-[{_U}]{{28}}", ("GOCSPX-",), 0, 0),
    ("google_oauth_token", rf"ya29\.[{_U}]{{30,600}}", ("ya29.",), 0, 0),
    ("azure_ad_client_secret", rf"[{_A}_~.]{{3}}\dQ~[{_A}_~.-]{{31,34}}", ("Q~",), 4, 0),
    ("azure_sas_signature", r"(?<=[?&])sig=(?P<secret>[A-Za-z0-9%+/=]{30,})", ("sig=",), 0, "secret"),
    ("alibaba_access_key", rf"LTAI[{_A}]{{20}}", ("LTAI",), 0, 0),
    ("digitalocean_token", rf"do[por]_v1_[{_H}]{{64}}", ("dop_v1_", "doo_v1_", "dor_v1_"), 0, 0),
    ("heroku_api_key", rf"HRKU-AA[{_U}]{{58}}", ("HRKU-",), 0, 0),
    ("fly_io_token", rf"fo1_[{_U}]{{43}}", ("fo1_",), 0, 0),
    # Payments and commerce
    ("stripe_key", rf"(?:(?:sk|rk)_(?:live|test)|pk_live)_[{_A}]{{24,600}}|whsec_[{_A}]{{32,600}}",
     ("sk_", "rk_", "pk_live_", "whsec_"), 0, 0),
    ("square_token", rf"(?:EAAA[{_U}+=]{{60}}|sq0(?:atp|csp)-[{_U}]{{22,43}})", ("EAAA", "sq0atp-", "sq0csp-"), 0, 0),
    ("shopify_token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}", ("shpat_", "shpca_", "shppa_", "shpss_"), 0, 0),
    # Messaging and email
    ("slack_token", rf"(?:xox[abposr]|xapp)-(?=[{_A}-]{{15,600}})\d+-[{_A}-]{{0,600}}[{_A}]",
     ("xox", "xapp-"), 0, 0),
    ("twilio_api_key", r"SK[0-9a-fA-F]{32}", ("SK",), 0, 0),
    ("sendgrid_api_key", rf"SG\.[{_U}]{{22}}\.[{_U}]{{43}}", ("SG.",), 0, 0),
    ("mailgun_api_key", rf"key-[{_H}]{{32}}", ("key-",), 0, 0),
    ("mailgun_api_key", rf"[{_H}]{{32}}-[{_H}]{{8}}-[{_H}]{{8}}", ("-",), 32, 0),
    ("mailchimp_api_key", rf"[{_H}]{{32}}-us\d{{1,2}}", ("-us",), 32, 0),
    ("discord_bot_token", rf"[MNO][{_U}]{{23,25}}\.[{_U}]{{6}}\.[{_U}]{{27,40}}", (".",), (24, 25, 26), 0),
    ("telegram_bot_token", rf"(?:(?<=/bot)|(?<![{_U}]))\d{{8,10}}:AA[{_U}]{{33}}", (":AA",), (8, 9, 10), 0),
    ("twitter_bearer_token", rf"A{{21,600}}[{_A}%]{{30,600}}", ("AAAAAAAAAAAAAAAAAAAAA",), 0, 0),
    ("facebook_access_token", rf"EAA[CG][{_A}]{{90,600}}", ("EAAC", "EAAG"), 0, 0),
    ("firebase_fcm_key", rf"AAAA[{_U}]{{7}}:APA91b[{_U}]{{100,600}}", (":APA91b",), 11, 0),
    ("mapbox_token", rf"sk\.eyJ[{_U}]{{20,600}}\.[{_U}]{{20,600}}", ("sk.eyJ",), 0, 0),
    # Keys
    ("age_secret_key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", ("AGE-SECRET-KEY-1",), 0, 0),
)
