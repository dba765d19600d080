"""Configuration: the file's place, precedence of the four sources, validation with exact
positions, masking in `rtm-console config`, and how `functions.target: auto` resolves."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import textwrap
from pathlib import Path

import pytest

from console.config import (
    KEYS,
    ConfigError,
    ListenAddress,
    Source,
    TlsSettings,
    config_as_json,
    load_config,
    render_config,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def errors(flags=None, env=None, path=None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(flags or {}, env or {}, path)
    return [str(finding) for finding in raised.value.findings]


# --- where the file is ----------------------------------------------------------------------


def test_no_file_at_the_default_place_means_defaults(home):
    config = load_config({}, {"HOME": str(home)}, None)
    assert config.file is None
    assert config.refresh_interval == 2.0
    assert config.theme == "dark"
    assert config.exporter.listen == ListenAddress("127.0.0.1", 9465)
    assert config.functions.gateway_listen == ListenAddress("127.0.0.1", 8790)
    assert config.exporter.web_config is None and config.exporter.console_listen is None
    assert config.autoscaler.tolerance == 0.1
    assert config.kiosk.enabled is False and config.kiosk.cycle_interval == 0 and not config.kiosk.lock
    assert config.data_dir == home / ".local" / "state" / "rtm-console"
    assert config.specs_dir == home / ".config" / "rtm-console" / "specs"
    assert all(source.kind == "default" for source in config.sources.values())
    assert "none found (default location); using defaults" in render_config(config)


def test_file_at_xdg_config_home_is_read(home, tmp_path):
    xdg = tmp_path / "xdg"
    write(xdg / "rtm-console" / "config.yaml", "theme: light\n")
    config = load_config({}, {"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}, None)
    assert config.theme == "light"
    assert config.file == xdg / "rtm-console" / "config.yaml"
    assert config.file_source == "default location"


def test_flag_config_beats_rtm_config(home, tmp_path):
    by_flag = write(tmp_path / "flag.yaml", "theme: light\n")
    by_env = write(tmp_path / "env.yaml", "theme: high-contrast\n")
    config = load_config({}, {"HOME": str(home), "RTM_CONFIG": str(by_env)}, by_flag)
    assert (config.theme, config.file_source) == ("light", "flag --config")
    config = load_config({}, {"HOME": str(home), "RTM_CONFIG": str(by_env)}, None)
    assert (config.theme, config.file_source) == ("high-contrast", "env RTM_CONFIG")


def test_a_named_file_that_is_missing_is_an_error(home, tmp_path):
    missing = tmp_path / "nope.yaml"
    assert errors(env={"HOME": str(home)}, path=missing) == [f"{missing}: error: config file not found"]
    assert errors(env={"HOME": str(home), "RTM_CONFIG": str(missing)}) == [
        f"{missing}: error: config file not found"
    ]


def test_an_empty_file_means_defaults(home, tmp_path):
    path = write(tmp_path / "c.yaml", "# nothing yet\n")
    config = load_config({}, {"HOME": str(home)}, path)
    assert config.file == path and config.theme == "dark"


# --- precedence -----------------------------------------------------------------------------


def test_flag_beats_env_beats_file_beats_default(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        theme: light
        exporter:
          listen: 127.0.0.1:9001
    """)
    env = {"HOME": str(home), "RTM_EXPORTER_LISTEN": "127.0.0.1:9002"}
    flags = {"exporter.listen": "127.0.0.1:9003"}

    config = load_config(flags, env, path)
    assert config.exporter.listen.port == 9003
    assert config.source("exporter.listen") == Source("flag", "--listen")

    config = load_config({}, env, path)
    assert config.exporter.listen.port == 9002
    assert config.source("exporter.listen") == Source("env", "RTM_EXPORTER_LISTEN")

    config = load_config({}, {"HOME": str(home)}, path)
    assert config.exporter.listen.port == 9001
    assert str(config.source("exporter.listen")) == f"file {path}:3"

    config = load_config({}, {"HOME": str(home)}, None)
    assert config.exporter.listen.port == 9465
    assert str(config.source("exporter.listen")) == "default"


def test_all_four_sources_at_once_each_reported(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        theme: light
        refresh_interval: 5s
        autoscaler:
          tolerance: 0.2
    """)
    env = {"HOME": str(home), "RTM_REFRESH_INTERVAL": "750ms", "RTM_THEME": "high-contrast"}
    flags = {"theme": "dark", "kiosk.lock": None}  # None: the flag was not given
    config = load_config(flags, env, path)
    assert (config.theme, str(config.source("theme"))) == ("dark", "flag --theme")
    assert (config.refresh_interval, str(config.source("refresh_interval"))) == (0.75, "env RTM_REFRESH_INTERVAL")
    assert (config.autoscaler.tolerance, str(config.source("autoscaler.tolerance"))) == (0.2, f"file {path}:4")
    assert (config.kiosk.lock, str(config.source("kiosk.lock"))) == (False, "default")
    shown = render_config(config)
    assert re.search(r"^theme\s+dark\s+flag --theme$", shown, re.M)
    assert re.search(r"^refresh_interval\s+0\.75 s\s+env RTM_REFRESH_INTERVAL$", shown, re.M)
    assert re.search(rf"^autoscaler\.tolerance\s+0\.2\s+file {re.escape(str(path))}:4$", shown, re.M)


def test_typed_flag_values_are_accepted(home):
    flags = {"kiosk.enabled": True, "refresh_interval": 1, "docker.endpoints": ["tcp://10.0.0.5:2375"],
             "exporter.web_config": Path("web.yml")}
    config = load_config(flags, {"HOME": str(home)}, None)
    assert config.kiosk.enabled is True
    assert config.refresh_interval == 1.0
    assert config.docker.endpoints[0].name == "10.0.0.5"
    assert config.exporter.web_config == Path.cwd() / "web.yml"


def test_an_empty_environment_variable_counts_as_unset(home):
    config = load_config({}, {"HOME": str(home), "RTM_THEME": ""}, None)
    assert config.theme == "dark" and config.source("theme").kind == "default"


def test_config_is_frozen(home):
    config = load_config({}, {"HOME": str(home)}, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.theme = "light"  # type: ignore[misc]


def test_relative_paths_in_the_file_are_relative_to_the_file(home, tmp_path):
    path = write(tmp_path / "etc" / "c.yaml", """
        specs_dir: specs
        data_dir: ~/state
        exporter:
          web_config: ../web.yml
    """)
    config = load_config({}, {"HOME": str(home)}, path)
    assert config.specs_dir == tmp_path / "etc" / "specs"
    assert config.data_dir == home / "state"
    assert config.exporter.web_config == tmp_path / "web.yml"


def test_each_backend_receives_its_own_settings_type_built_from_the_file(home, tmp_path):
    from backends.aws_lambda.settings import AwsSettings
    from backends.docker.settings import DockerEndpoint
    from backends.libvirt import make_libvirt_backends
    from backends.libvirt.settings import LibvirtConnection
    from backends.localfn import make_local_backends
    from backends.localfn.settings import LocalFunctionsSettings

    path = write(tmp_path / "c.yaml", """
        data_dir: data
        docker: {endpoints: [{name: build, host: "tcp://build-01:2376"}]}
        libvirt: {uris: [{name: lab, uri: "qemu+ssh://lab-01/system"}]}
        aws: {regions: [eu-west-1], endpoint_url: "http://127.0.0.1:5000"}
        functions: {gateway_listen: "127.0.0.1:8799"}
    """)
    config = load_config({}, {"HOME": str(home)}, path)
    assert config.docker.endpoints == (DockerEndpoint("build", "tcp://build-01:2376"),)
    assert config.libvirt.uris == (LibvirtConnection("lab", "qemu+ssh://lab-01/system"),)
    assert config.aws == AwsSettings(("eu-west-1",), (), "http://127.0.0.1:5000", None)
    assert config.local_functions == LocalFunctionsSettings(tmp_path / "data", "127.0.0.1", 8799)
    [vm_backend] = make_libvirt_backends(config.libvirt.uris)  # not connected until first polled
    assert vm_backend.name == "libvirt@lab"
    _, handlers = make_local_backends(config.local_functions)
    assert handlers["function"].gateway_url == "http://127.0.0.1:8799"


# --- the defaults that come from other tools' variables ---------------------------------------


def test_docker_default_follows_docker_host_and_its_tls_variables(home, tmp_path):
    env = {"HOME": str(home), "DOCKER_HOST": "tcp://build-01:2376", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(tmp_path / "certs")}
    config = load_config({}, env, None)
    (endpoint,) = config.docker.endpoints
    assert (endpoint.name, endpoint.host) == ("build-01", "tcp://build-01:2376")
    assert endpoint.tls == TlsSettings(tmp_path / "certs" / "ca.pem", tmp_path / "certs" / "cert.pem",
                                       tmp_path / "certs" / "key.pem", True)
    assert str(config.source("docker.endpoints")) == "default (DOCKER_HOST)"


def test_docker_default_is_the_local_socket(home):
    (endpoint,) = load_config({}, {"HOME": str(home)}, None).docker.endpoints
    assert (endpoint.name, endpoint.host, endpoint.tls) == ("local", "unix:///var/run/docker.sock", None)


def test_docker_default_follows_the_current_docker_context(home):
    docker = home / ".docker"
    write(docker / "config.json", json.dumps({"currentContext": "remote"}))
    digest = hashlib.sha256(b"remote").hexdigest()
    write(docker / "contexts" / "meta" / digest / "meta.json",
          json.dumps({"Name": "remote", "Endpoints": {"docker": {"Host": "ssh://ops@web-01"}}}))
    config = load_config({}, {"HOME": str(home)}, None)
    assert [(e.name, e.host) for e in config.docker.endpoints] == [("web-01", "ssh://ops@web-01")]
    assert str(config.source("docker.endpoints")) == "default (docker context remote)"


def test_libvirt_default_follows_libvirt_default_uri(home):
    config = load_config({}, {"HOME": str(home)}, None)
    assert [(c.name, c.uri) for c in config.libvirt.uris] == [("local", "qemu:///system")]
    config = load_config({}, {"HOME": str(home), "LIBVIRT_DEFAULT_URI": "qemu+ssh://vm-host/system"}, None)
    assert [(c.name, c.uri) for c in config.libvirt.uris] == [("vm-host", "qemu+ssh://vm-host/system")]


def test_a_broken_docker_host_variable_is_reported_by_name(home):
    assert errors(env={"HOME": str(home), "DOCKER_HOST": "/var/run/docker.sock"}) == [
        "DOCKER_HOST (environment): error: docker.endpoints: '/var/run/docker.sock' is not a Docker "
        "host address (hint: did you mean unix:///var/run/docker.sock?)"
    ]


def test_full_file_is_understood(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        refresh_interval: 1.5
        theme: high-contrast
        docker:
          endpoints:
            - name: here
              host: unix:///run/docker.sock
            - name: build
              host: tcp://10.0.0.7:2376
              tls: {ca: ca.pem, cert: cert.pem, key: key.pem, verify: false}
            - ssh://ops@web-02
        libvirt:
          uris:
            - qemu:///system
            - {name: lab, uri: "qemu+ssh://root@lab-01/system"}
          shutdown_timeout: 2m
        aws:
          regions: [eu-west-1, us-east-2]
          profiles: [ops]
          role_arn: arn:aws:iam::123456789012:role/lambda-exec
        functions:
          target: local
          gateway_listen: "[::1]:8791"
        exporter:
          listen: :9100
          console_listen: 127.0.0.1:9101
        kiosk: {enabled: true, cycle_interval: 30s, lock: true}
        load_balancer:
          upstream_path: /etc/nginx/conf.d/rtm-upstreams.conf
          reload_command: nginx -s reload
    """)
    config = load_config({}, {"HOME": str(home)}, path)
    assert config.refresh_interval == 1.5 and config.theme == "high-contrast"
    assert [(e.name, e.host) for e in config.docker.endpoints] == [
        ("here", "unix:///run/docker.sock"), ("build", "tcp://10.0.0.7:2376"), ("web-02", "ssh://ops@web-02")]
    assert config.docker.endpoints[1].tls == TlsSettings(tmp_path / "ca.pem", tmp_path / "cert.pem",
                                                         tmp_path / "key.pem", False)
    assert [(c.name, c.uri) for c in config.libvirt.uris] == [
        ("local", "qemu:///system"), ("lab", "qemu+ssh://root@lab-01/system")]
    assert config.libvirt.shutdown_timeout == 120.0
    assert config.aws.regions == ("eu-west-1", "us-east-2") and config.aws.profiles == ("ops",)
    assert config.functions.target == "local"  # asked for explicitly, despite the profile
    assert config.functions.gateway_listen == ListenAddress("::1", 8791)
    assert str(config.functions.gateway_listen) == "[::1]:8791"
    assert config.exporter.listen == ListenAddress("", 9100)
    assert config.exporter.console_listen == ListenAddress("127.0.0.1", 9101)
    assert (config.kiosk.enabled, config.kiosk.cycle_interval, config.kiosk.lock) == (True, 30.0, True)
    assert config.load_balancer.upstream_path == Path("/etc/nginx/conf.d/rtm-upstreams.conf")
    assert config.load_balancer.reload_command == ("nginx", "-s", "reload")
    assert config.get("aws.role_arn") == "arn:aws:iam::123456789012:role/lambda-exec"


# --- validation, with positions -----------------------------------------------------------------


def test_misspelt_keys_get_did_you_mean(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        refresh_intervall: 2s
        exporter:
          listn: ":9000"
        listen: 127.0.0.1:1
        dokcer: {}
    """)
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:1:1: error: unknown key 'refresh_intervall' (hint: did you mean 'refresh_interval'?)",
        f"{path}:3:3: error: unknown key 'exporter.listn' (hint: did you mean 'listen'?)",
        f"{path}:4:1: error: unknown key 'listen' (hint: did you mean 'exporter.listen'?)",
        f"{path}:5:1: error: unknown key 'dokcer' (hint: did you mean 'docker'?)",
    ]


def test_wrong_types_point_at_the_value(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        theme: [dark]
        exporter:
          web_config: {a: 1}
        kiosk:
          lock: maybe
        docker: 5
        refresh_interval: true
    """)
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:1:8: error: theme: expected one of dark, light, high-contrast, got a list",
        f"{path}:3:15: error: exporter.web_config: expected a path, got a mapping",
        f"{path}:5:9: error: kiosk.lock: expected true or false, got text",
        f"{path}:6:9: error: docker: expected a mapping of settings, got a number",
        f"{path}:7:19: error: refresh_interval: a duration must be a number of seconds or a string such "
        "as 30s, not bool (hint: use s, m, h or ms (also us and ns), as in 30s, 500ms or 1m30s)",
    ]


def test_bad_values_point_at_the_offending_character(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        theme: drak
        refresh_interval: 100ms
        libvirt: {shutdown_timeout: 2 m}
        exporter:
          listen: 127.0.0.1:99999
        functions:
          gateway_listen: "localhost:abc"
          target: lamda
        kiosk:
          cycle_interval: 0.2
        aws:
          regions: [us-east-1, Europe]
          endpoint_url: ftp://moto:5000
        autoscaler: {tolerance: 1.5}
    """)
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:1:8: error: theme: 'drak' is not one of dark, light, high-contrast (hint: did you mean 'dark'?)",
        f"{path}:2:19: error: refresh_interval: 0.1 s is below the lower bound of 0.5 s",
        f'{path}:3:30: error: libvirt.shutdown_timeout: "2 m" is not a duration: it contains a space '
        "(hint: write it without spaces, as in 1m30s)",
        f"{path}:5:21: error: exporter.listen: port 99999 is out of range (0-65535)",
        f"{path}:7:30: error: functions.gateway_listen: port 'abc' is not a number",
        f"{path}:8:11: error: functions.target: 'lamda' is not one of aws, local, auto",
        f"{path}:10:19: error: kiosk.cycle_interval: 0.2 s is below the lower bound of 1 s "
        "(hint: use 0 to turn it off)",
        f"{path}:12:24: error: aws.regions: 'Europe' is not an AWS region "
        "(hint: regions look like us-east-1 or eu-west-3)",
        f"{path}:13:17: error: aws.endpoint_url: 'ftp://moto:5000' is not an http:// or https:// URL "
        "(hint: e.g. http://127.0.0.1:5000)",
        f"{path}:14:25: error: autoscaler.tolerance: 1.5 is outside 0 to 1 (exclusive) "
        "(hint: the usual value is 0.1 (10 %))",
    ]


@pytest.mark.parametrize(
    ("value", "column", "message"),
    [
        ("localhost", 11, "'localhost' is not a listen address (hint: write HOST:PORT, e.g. 127.0.0.1:9465, "
                          "or :9465 for every interface)"),
        ("9100", 11, "9100 is not a listen address (hint: write HOST:PORT, e.g. 127.0.0.1:9100, "
                     "or :9100 for every interface)"),
        ("::1:9100", 11, "an IPv6 address must be written in brackets (hint: e.g. [::1]:9465)"),
        ("127.0.0.256:9100", 11, "'127.0.0.256' is not a host name or IP address"),
        ("my_host:9100", 13, "'my_host' is not a host name or IP address"),
        ('"[::1:9100"', 21, "missing ']' after the IPv6 address"),
        ("'127.0.0.1:'", 22, "port '' is not a number"),
    ],
)
def test_listen_address_syntax(home, tmp_path, value, column, message):
    path = write(tmp_path / "c.yaml", f"exporter:\n  listen: {value}\n")
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:2:{column}: error: exporter.listen: {message}"
    ]


def test_endpoint_errors_point_into_the_list(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        docker:
          endpoints:
            - name: a
              host: unix://var/run/docker.sock
        libvirt:
          uris:
            - qemu:///system
            - qemu:///session
    """)
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:4:20: error: docker.endpoints: unix:// needs an absolute socket path "
        "(hint: e.g. unix:///var/run/docker.sock)",
        f"{path}:8:7: error: libvirt.uris: two libvirt connections are named 'local' "
        "(hint: give each one its own name: with 'name:')",
    ]


def test_tls_belongs_to_tcp_hosts_and_needs_cert_with_key(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        docker:
          endpoints:
            - host: unix:///x.sock
              tls: {ca: ca.pem}
    """)
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:4:7: error: docker.endpoints: tls applies to tcp:// hosts only "
        "(hint: remove it, or use a tcp:// host)"
    ]
    write(path, """
        docker:
          endpoints:
            - host: tcp://h:2376
              tls: {cert: c.pem, verfy: true}
    """)
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:4:26: error: docker.endpoints: unknown key 'verfy' in TLS settings "
        "(hint: did you mean 'verify'?)"
    ]
    write(path, """
        docker:
          endpoints:
            - host: tcp://h:2376
              tls: {cert: c.pem}
    """)
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:4:12: error: docker.endpoints: tls needs both cert and key, or neither"
    ]


def test_duplicate_keys_and_missing_values(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        theme: dark
        theme: light
        refresh_interval:
        exporter:
          web_config:
    """)
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:2:1: error: duplicate key 'theme' (hint: each key may appear once; remove one of them)",
        f"{path}:3:18: error: refresh_interval: refresh_interval needs a value "
        "(hint: remove the line to use the default)",
    ]  # web_config may be empty: it is optional


def test_yaml_syntax_errors_have_positions(home, tmp_path):
    path = write(tmp_path / "c.yaml", "theme: dark\nexporter:\n  listen: [127.0.0.1:1\n")
    (message,) = errors(env={"HOME": str(home)}, path=path)
    assert message.startswith(f"{path}:4:1: error: invalid YAML: expected ',' or ']'")
    path.write_text("theme: dark\n\tkiosk: {}\n")
    (message,) = errors(env={"HOME": str(home)}, path=path)
    assert message.startswith(f"{path}:2:1: error: invalid YAML:")


def _problems_of_the_three_readers(path: Path, home: Path) -> dict[str, str]:
    """What a spec, the config file and the web config say of the same file."""
    from console.exporter.web_config import WebConfigError, load_web_config
    from rtm.documents import load_file

    (finding,) = load_file(path).findings
    spec = f"{finding.path}:{finding.line}:{finding.column}: error: {finding.message}"
    with pytest.raises(WebConfigError) as web:
        load_web_config(path)
    return {"spec": spec + (f" (hint: {finding.hint})" if finding.hint else ""),
            "config": "\n".join(errors(env={"HOME": str(home)}, path=path)), "web config": str(web.value)}


@pytest.mark.parametrize("content", [b"a: [1,\n  b: 2\n", b"a:\n  - b\n   c: d\n", b"a: {b: 1\n"])
def test_specs_the_config_file_and_the_web_config_word_and_place_invalid_yaml_alike(home, tmp_path, content):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    said = _problems_of_the_three_readers(path, home)
    assert said["spec"] == said["config"] == said["web config"], said
    assert said["config"].startswith(f"{path}:") and ": error: invalid YAML: " in said["config"]


def test_text_that_is_not_utf8_is_placed_at_its_first_bad_byte_by_all_three_readers(home, tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("theme: dark\nkiosk: {lock: caf\u00e9}\n".encode("latin-1"))
    said = _problems_of_the_three_readers(path, home)
    hint = "(hint: save it as UTF-8)"
    assert said == {"spec": f"{path}:2:18: error: the file is not UTF-8 text {hint}",
                    "config": f"{path}:2:18: error: the config file is not UTF-8 text {hint}",
                    "web config": f"{path}:2:18: error: the web config is not UTF-8 text {hint}"}


def test_a_file_that_is_not_a_mapping(home, tmp_path):
    path = write(tmp_path / "c.yaml", "- theme\n")
    assert errors(env={"HOME": str(home)}, path=path) == [
        f"{path}:1:1: error: the config file: expected a mapping of settings, got a list"
    ]


def test_environment_and_flag_errors_name_their_variable_and_flag(home, tmp_path):
    path = write(tmp_path / "c.yaml", "theme: purple\n")
    env = {"HOME": str(home), "RTM_REFRESH_INTERVAL": "0.1", "RTM_KIOSK_LOCK": "sometimes"}
    assert errors({"exporter.listen": "localhost:http"}, env, path) == [
        f"{path}:1:8: error: theme: 'purple' is not one of dark, light, high-contrast",
        "RTM_REFRESH_INTERVAL (environment): error: refresh_interval: 0.1 s is below the lower bound of 0.5 s",
        "--listen (command line): error: exporter.listen: port 'http' is not a number",
        "RTM_KIOSK_LOCK (environment): error: kiosk.lock: expected true or false, got text",
    ]


def test_finding_fields(home, tmp_path):
    path = write(tmp_path / "c.yaml", "theme: drak\n")
    with pytest.raises(ConfigError) as raised:
        load_config({}, {"HOME": str(home)}, path)
    (finding,) = raised.value.findings
    assert (finding.path, finding.line, finding.column, finding.key) == (str(path), 1, 8, "theme")
    assert finding.hint == "did you mean 'dark'?"


def test_environment_booleans_and_lists(home):
    env = {"HOME": str(home), "RTM_KIOSK_LOCK": "yes", "RTM_AWS_REGIONS": "eu-west-1, us-east-1",
           "RTM_DOCKER_ENDPOINTS": "unix:///var/run/docker.sock,tcp://10.1.1.1:2375",
           "RTM_LOAD_BALANCER_RELOAD_COMMAND": "systemctl reload 'nginx.service'"}
    config = load_config({}, env, None)
    assert config.kiosk.lock is True
    assert config.aws.regions == ("eu-west-1", "us-east-1")
    assert [e.name for e in config.docker.endpoints] == ["local", "10.1.1.1"]
    assert config.load_balancer.reload_command == ("systemctl", "reload", "nginx.service")


# --- showing it, secrets masked ---------------------------------------------------------------


def test_render_masks_secrets_and_json_agrees(home, tmp_path):
    path = write(tmp_path / "c.yaml", """
        docker:
          endpoints:
            - name: build
              host: tcp://10.0.0.7:2376
              tls: {ca: /etc/docker/ca.pem, cert: /etc/docker/cert.pem, key: /etc/docker/key.pem}
        aws:
          endpoint_url: http://admin:hunter2@127.0.0.1:5000
        load_balancer:
          reload_command: [curl, -H, "Authorization: x", --password=hunter2, http://127.0.0.1/reload]
    """)
    config = load_config({}, {"HOME": str(home)}, path)
    assert config.aws.endpoint_url == "http://admin:hunter2@127.0.0.1:5000"  # the value itself is intact
    shown = render_config(config)
    assert "hunter2" not in shown
    assert "/etc/docker/key.pem" not in shown
    assert re.search(r"^docker\.endpoints\[0\]\.tls\.key\s+\*\*\*\s", shown, re.M)
    assert re.search(r"^docker\.endpoints\[0\]\.tls\.cert\s+/etc/docker/cert\.pem\s", shown, re.M)
    assert "http://admin:***@127.0.0.1:5000" in shown
    assert "--password=***" in shown
    as_json = config_as_json(config)
    text = json.dumps(as_json)
    assert "hunter2" not in text and "/etc/docker/key.pem" not in text
    assert as_json["settings"]["docker.endpoints"]["value"][0]["tls"]["key"] == "***"
    assert as_json["settings"]["aws.endpoint_url"]["value"] == "http://admin:***@127.0.0.1:5000"
    assert as_json["file"] == str(path)


def test_render_lists_every_key_with_a_source(home):
    shown = render_config(load_config({}, {"HOME": str(home)}, None))
    for key in KEYS:
        assert re.search(rf"^{re.escape(key.name)}[.\[\s]", shown, re.M), key.name


# --- functions target: auto -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra_env", "target", "reason"),
    [
        ({}, "local", "auto: no AWS endpoint, profile or credentials are configured"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "aws",
         "auto: aws.endpoint_url is set (default (AWS_ENDPOINT_URL))"),
        ({"RTM_AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "aws",
         "auto: aws.endpoint_url is set (env RTM_AWS_ENDPOINT_URL)"),
        ({"AWS_PROFILE": "ops"}, "aws", "auto: AWS profile 'ops' is configured (default (AWS_PROFILE))"),
        ({"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}, "aws", "auto: AWS_ACCESS_KEY_ID is set in the environment"),
        ({"RTM_FUNCTIONS_TARGET": "local", "AWS_PROFILE": "ops"}, "local", "set to local"),
        ({"RTM_FUNCTIONS_TARGET": "aws"}, "aws", "set to aws"),
    ],
)
def test_auto_functions_target(home, extra_env, target, reason):
    config = load_config({}, {"HOME": str(home), **extra_env}, None)
    assert (config.functions.target, config.functions.target_reason) == (target, reason)


def test_auto_target_sees_an_aws_credentials_file(home):
    write(home / ".aws" / "credentials", "[default]\naws_access_key_id = x\n")
    config = load_config({}, {"HOME": str(home)}, None)
    assert config.functions.target == "aws"
    assert config.functions.target_reason == f"auto: AWS credentials file {home / '.aws' / 'credentials'} exists"


def test_auto_target_from_the_file_is_shown_with_its_reason(home, tmp_path):
    path = write(tmp_path / "c.yaml", "aws:\n  endpoint_url: http://127.0.0.1:5000\n")
    config = load_config({}, {"HOME": str(home)}, path)
    assert config.functions.requested_target == "auto"
    shown = render_config(config)
    assert re.search(rf"^functions\.target\s+aws \(auto: aws\.endpoint_url is set \(file {re.escape(str(path))}:2\)\)",
                     shown, re.M)
    entry = config_as_json(config)["settings"]["functions.target"]
    assert entry["value"] == "aws" and entry["requested"] == "auto"


# --- documentation --------------------------------------------------------------------------


def test_every_key_is_documented_with_its_environment_variable_and_flag():
    docs = (REPO / "docs" / "config.md").read_text()
    for key in KEYS:
        assert f"`{key.name}`" in docs, key.name
        assert f"`{key.env}`" in docs, key.env
        if key.flag:
            assert f"`{key.flag}`" in docs, key.flag


def test_the_complete_example_in_the_docs_is_valid(home, tmp_path):
    docs = (REPO / "docs" / "config.md").read_text()
    example = docs.split("## A complete example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "config.yaml"
    path.write_text(example)
    config = load_config({}, {"HOME": str(home)}, path)
    assert config.libvirt.shutdown_timeout == 90.0
    assert config.docker.endpoints[1].tls.key == home / ".docker" / "build" / "key.pem"
    assert config.functions.target == "aws"
