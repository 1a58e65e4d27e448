//! Resource names and the format rules for settings values.
//!
//! Each `check_*` function returns `Err(fix)` with the fix to show the operator.

/// Regions where the fleet can run (commercial partition).
pub const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Prefix shared by every resource name of one deployment.
pub fn prefix(project: &str, environment: &str) -> String {
    format!("{project}-{environment}")
}

/// A default bucket name that is unique per account and region.
pub fn default_bucket(project: &str, environment: &str, account: &str, region: &str) -> String {
    format!("{}-{account}-{region}", prefix(project, environment))
}

fn lowercase_name(value: &str, max: usize, what: &str) -> Result<(), String> {
    let ok = (1..=max).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "use 1-{max} lowercase letters, digits and `-` for the {what}, starting with a letter"
        ))
    }
}

/// `PROJECT_NAME`: short enough that derived names fit every service's limit.
pub fn check_project(value: &str) -> Result<(), String> {
    lowercase_name(value, 24, "project name")
}

/// `ENVIRONMENT`: `dev`, `staging`, `prod` or another short name.
pub fn check_environment(value: &str) -> Result<(), String> {
    lowercase_name(value, 12, "environment")
}

/// `AWS_REGION`: a known region code.
pub fn check_region(value: &str) -> Result<(), String> {
    if REGIONS.contains(&value) {
        return Ok(());
    }
    let close: Vec<&str> = REGIONS
        .iter()
        .copied()
        .filter(|r| r.split('-').next() == value.split('-').next())
        .collect();
    if close.is_empty() {
        Err("use a region code such as us-east-2 or eu-west-1".to_string())
    } else {
        Err(format!("use a known region code, e.g. one of {}", close.join(", ")))
    }
}

/// `AWS_ACCOUNT_ID`: twelve digits.
pub fn check_account_id(value: &str) -> Result<(), String> {
    if value.len() == 12 && value.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err("use the 12-digit account id (step-000 fills it in from your credentials)".into())
    }
}

/// `AWS_ENDPOINT_URL`: an http(s) URL.
pub fn check_endpoint(value: &str) -> Result<(), String> {
    check_url(value)
        .map_err(|_| "use an URL such as http://127.0.0.1:4566, or leave it empty for AWS".into())
}

/// A URL with a scheme and a host.
pub fn check_url(value: &str) -> Result<(), String> {
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !value.contains(' ') => Ok(()),
        _ => Err("use a full http(s) URL; re-run the step that writes it".into()),
    }
}

/// An ARN.
pub fn check_arn(value: &str) -> Result<(), String> {
    if value.starts_with("arn:") && value.split(':').count() >= 6 {
        Ok(())
    } else {
        Err("use a full ARN; re-run the step that writes it".into())
    }
}

/// S3 bucket naming rules (general purpose buckets).
pub fn check_bucket_name(value: &str) -> Result<(), String> {
    let fix = || {
        "use 3-63 lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit"
            .to_string()
    };
    let chars_ok =
        value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&value.len()) || !chars_ok || !ends_ok {
        return Err(fix());
    }
    if value.contains("..")
        || value.split('.').count() == 4 && value.split('.').all(|p| p.parse::<u8>().is_ok())
    {
        return Err("bucket names may not contain `..` or look like an IP address".into());
    }
    if value.starts_with("xn--") || value.starts_with("sthree-") || value.ends_with("-s3alias") {
        return Err("bucket names may not start with xn-- or sthree- or end with -s3alias".into());
    }
    Ok(())
}

/// SQS queue names: 1-80 of letters, digits, `-` and `_` (standard queues, no `.fifo`).
pub fn check_queue_name(value: &str) -> Result<(), String> {
    let ok = (1..=80).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err("use 1-80 letters, digits, `-` and `_` (standard queues; no .fifo)".into())
    }
}

/// ECR repository names.
pub fn check_repository(value: &str) -> Result<(), String> {
    let ok = (2..=256).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_./".contains(c));
    if ok { Ok(()) } else { Err("use lowercase letters, digits, `-`, `_`, `.` and `/`".into()) }
}

/// EC2 instance type names such as `g5.xlarge`.
pub fn check_instance_type(value: &str) -> Result<(), String> {
    let ok = value.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && !size.is_empty()
            && family.starts_with(|c: char| c.is_ascii_lowercase())
            && family.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && size.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err("use instance type names such as g5.xlarge, separated by commas".into())
    }
}

/// Resource ids such as `ami-0123abcd`.
pub fn check_id(value: &str, prefix: &str) -> Result<(), String> {
    let ok = value.strip_prefix(prefix).is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit())
    });
    if ok { Ok(()) } else { Err(format!("use an id of the form {prefix}0123456789abcdef0")) }
}

/// IPv4 CIDR blocks.
pub fn check_cidr(value: &str) -> Result<(), String> {
    let ok = value.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
    });
    if ok { Ok(()) } else { Err("use an IPv4 CIDR such as 203.0.113.7/32".into()) }
}

/// CTranslate2 compute types.
pub fn check_compute_type(value: &str) -> Result<(), String> {
    const TYPES: &[&str] = &[
        "default",
        "auto",
        "int8",
        "int8_float16",
        "int8_float32",
        "int8_bfloat16",
        "int16",
        "float16",
        "bfloat16",
        "float32",
    ];
    if TYPES.contains(&value) { Ok(()) } else { Err(format!("use one of {}", TYPES.join(", "))) }
}

/// Language codes such as `en` or `pt`.
pub fn check_language(value: &str) -> Result<(), String> {
    if (2..=3).contains(&value.len()) && value.chars().all(|c| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err("use a two-letter language code such as en, or leave it empty to detect".into())
    }
}

/// Any non-empty value.
pub fn non_empty(value: &str, what: &str) -> Result<(), String> {
    if value.trim().is_empty() { Err(format!("give {what}")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_rules_reject_what_s3_rejects() {
        assert!(check_bucket_name("transcribe-fleet-dev-123456789012-us-east-2").is_ok());
        for bad in ["ab", "Upper", "a..b", "-lead", "trail-", "192.168.5.4", "xn--abc", "a_b"] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instance_types_and_ids_have_their_shapes() {
        assert!(check_instance_type("g5.xlarge").is_ok());
        assert!(check_instance_type("g4dn.12xlarge").is_ok());
        assert!(check_instance_type("g5xlarge").is_err());
        assert!(check_id("ami-0123456789abcdef0", "ami-").is_ok());
        assert!(check_id("ami-xyz", "ami-").is_err());
    }

    #[test]
    fn unknown_region_suggests_neighbours() {
        let fix = check_region("us-east-9").expect_err("unknown region");
        assert!(fix.contains("us-east-1"), "{fix}");
        assert!(check_region("eu-west-1").is_ok());
    }
}
