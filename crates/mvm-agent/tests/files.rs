//! File requests against a real dev-mode agent and real files.

mod support;

use mvm_proto::{ClientError, ErrorKind, FILE_READ_MAX_BYTES, FileKind};
use support::DevAgent;

fn agent_error_kind(err: &ClientError) -> Option<ErrorKind> {
    match err {
        ClientError::Agent { error, .. } => Some(error.kind),
        _ => None,
    }
}

#[test]
fn write_read_stat_list() {
    let agent = DevAgent::start(|_| {});
    let path = agent.path("data/nested/file.bin");
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    agent.client.write_file(&path, data.clone(), 0o600).unwrap();
    assert_eq!(agent.client.read_file(&path).unwrap(), data);
    assert_eq!(std::fs::read(&path).unwrap(), data);

    let stat = agent.client.stat(&path).unwrap();
    assert_eq!(
        (stat.kind, stat.size, stat.mode),
        (FileKind::File, 100_000, 0o600)
    );

    std::os::unix::fs::symlink("file.bin", agent.root().join("data/nested/link")).unwrap();
    let link = agent.client.stat(&agent.path("data/nested/link")).unwrap();
    assert_eq!(
        (link.kind, link.link_target.as_deref()),
        (FileKind::Symlink, Some("file.bin"))
    );

    let entries = agent.client.list(&agent.path("data/nested")).unwrap();
    let names: Vec<(&str, FileKind)> = entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        names,
        [("file.bin", FileKind::File), ("link", FileKind::Symlink)]
    );
}

#[test]
fn append_adds_to_the_end() {
    let agent = DevAgent::start(|_| {});
    let path = agent.path("log.txt");
    agent
        .client
        .write_file(&path, b"one\n".to_vec(), 0o644)
        .unwrap();
    let request = mvm_proto::Request::FileWrite {
        path: path.clone(),
        data: b"two\n".to_vec(),
        mode: 0o644,
        append: true,
    };
    agent.client.call(request).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
}

#[test]
fn errors_have_kinds() {
    let agent = DevAgent::start(|_| {});
    let err = agent.client.read_file(&agent.path("missing")).unwrap_err();
    assert_eq!(agent_error_kind(&err), Some(ErrorKind::NotFound), "{err}");
    let err = agent.client.list(&agent.path("missing")).unwrap_err();
    assert_eq!(agent_error_kind(&err), Some(ErrorKind::NotFound), "{err}");
    let err = agent.client.read_file("relative/path").unwrap_err();
    assert_eq!(
        agent_error_kind(&err),
        Some(ErrorKind::InvalidRequest),
        "{err}"
    );

    let big = agent.root().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(FILE_READ_MAX_BYTES + 1)
        .unwrap();
    let err = agent.client.read_file(big.to_str().unwrap()).unwrap_err();
    assert_eq!(agent_error_kind(&err), Some(ErrorKind::TooLarge), "{err}");
    assert!(
        err.to_string().contains("cat"),
        "the message should say how to get the file: {err}"
    );
}
