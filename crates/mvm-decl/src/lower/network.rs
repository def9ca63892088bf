//! Network: modes (including the seeds' "deny"), ports, egress allowlist, DNS.

use mvm_ir::*;

use super::args::{Args, dict_as_call};
use super::{Lowerer, child};
use crate::tables::{self, Mode, NETWORK_MODE, PORT_PROTO};
use crate::value::{Kind, Value};

impl Lowerer {
    pub(super) fn network(&mut self, args: &Args, v: &Value, ptr: &str) -> Option<Network> {
        let call = self.call_of(args, "network", v, &["network"])?;
        self.span(ptr, v.at);
        let a = self.bind(call, v.at)?;
        let mode = match a.get("mode") {
            Some(mv) => {
                self.span(child(ptr, "mode"), mv.at);
                self.one_of(&a, mv, &NETWORK_MODE)?
            }
            None => NETWORK_MODE.default_value(),
        };
        let ports = match a.get("ports") {
            Some(pv) => self.ports(&a, pv, &child(ptr, "ports"))?,
            None => Vec::new(),
        };
        let mut allow: Vec<(HostPort, usize)> = match a.get("egress") {
            Some(ev) => self.egress(&a, ev)?,
            None => Vec::new(),
        };
        let mut dns = match a.get("dns") {
            Some(dv) => Some(self.dns(&a, dv, &child(ptr, "dns"))?),
            None => None,
        };
        let https = match a.get("allow_https") {
            Some(hv) => {
                let Kind::List(items) = &hv.kind else {
                    self.type_err(&a, "allow_https", hv, "a list of host names");
                    return None;
                };
                let mut hosts = Vec::new();
                for item in items {
                    let host = self.str_of(&a, "allow_https", item)?;
                    let port = tables::HTTPS_PORT;
                    hosts.push((HostPort { host, port }, item.at));
                }
                Some((hosts, hv.at))
            }
            None => None,
        };
        let mode = match (mode, https) {
            (Mode::Deny, https) => {
                for param in ["egress", "dns"] {
                    if let Some(cv) = a.get(param) {
                        self.err(
                            Code::EKwargConflict,
                            cv.at,
                            format!("mode \"deny\" cannot be combined with `{param}`"),
                            "use mode=\"bridge\" with an explicit egress allowlist, or allow_https=[...] with mode \"deny\"",
                        );
                        return None;
                    }
                }
                match https {
                    Some((hosts, _)) if !hosts.is_empty() => {
                        allow.extend(hosts);
                        dns = Some(Dns::System);
                        NetworkMode::Bridge
                    }
                    _ => NetworkMode::None,
                }
            }
            (Mode::Ir(NetworkMode::Bridge), Some((hosts, _))) => {
                allow.extend(hosts);
                // Names in allow_https must resolve.
                dns.get_or_insert(Dns::System);
                NetworkMode::Bridge
            }
            (Mode::Ir(m), Some((_, at))) => {
                let name = NETWORK_MODE.name_of(Mode::Ir(m));
                self.err(
                    Code::EKwargConflict,
                    at,
                    format!(
                        "`{}` cannot be used with mode \"{name}\"",
                        self.param_spelling("allow_https")
                    ),
                    "use mode=\"deny\" (closed except these HTTPS hosts) or mode=\"bridge\"",
                );
                return None;
            }
            (Mode::Ir(m), None) => m,
        };
        // Sorted and deduplicated so equivalent declarations give identical IR.
        allow.sort_by(|x, y| x.0.cmp(&y.0));
        allow.dedup_by(|x, y| x.0 == y.0);
        let eg = child(ptr, "egress");
        if let Some(ev) = a.get("egress").or(a.get("allow_https")) {
            self.span(eg.clone(), ev.at);
            self.span(child(&eg, "allowlist"), ev.at);
        }
        for (i, (_, at)) in allow.iter().enumerate() {
            let item = child(&child(&eg, "allowlist"), i.to_string());
            self.span(item.clone(), *at);
            self.span(child(&item, "host"), *at);
        }
        Some(Network {
            mode,
            ports,
            egress: Egress {
                allowlist: allow.into_iter().map(|(hp, _)| hp).collect(),
            },
            dns: dns.unwrap_or_default(),
        })
    }

    pub(super) fn ports(&mut self, args: &Args, v: &Value, ptr: &str) -> Option<Vec<PortForward>> {
        let Kind::List(items) = &v.kind else {
            self.type_err(args, "ports", v, "a list of mvm.port(...)");
            return None;
        };
        self.span(ptr, v.at);
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let call = match &item.kind {
                Kind::Dict(_) => dict_as_call(item, "port"),
                _ => self.call_of(args, "ports", item, &["port"])?.clone(),
            };
            let a = self.bind(&call, item.at)?;
            let ip = child(ptr, i.to_string());
            self.span(ip.clone(), item.at);
            let guest = self.port_of(&a, "guest", a.get("guest")?)?;
            self.span(child(&ip, "guest"), a.get("guest")?.at);
            let host = match a.get("host") {
                Some(hv) => {
                    self.span(child(&ip, "host"), hv.at);
                    self.port_of(&a, "host", hv)?
                }
                None => tables::PORT_HOST,
            };
            let proto = match a.get("proto") {
                Some(pv) => self.one_of(&a, pv, &PORT_PROTO)?,
                None => PORT_PROTO.default_value(),
            };
            out.push(PortForward { guest, host, proto });
        }
        Some(out)
    }

    pub(super) fn host_port(
        &mut self,
        args: &Args,
        param: &str,
        item: &Value,
    ) -> Option<(HostPort, usize)> {
        let call = match &item.kind {
            Kind::Dict(_) => dict_as_call(item, "host_port"),
            _ => self.call_of(args, param, item, &["host_port"])?.clone(),
        };
        let a = self.bind(&call, item.at)?;
        let host = self.req_str(&a, "host")?;
        let port = self.port_of(&a, "port", a.get("port")?)?;
        Some((HostPort { host, port }, a.get("host")?.at))
    }

    pub(super) fn egress(&mut self, args: &Args, v: &Value) -> Option<Vec<(HostPort, usize)>> {
        let (owner_args, list) = match &v.kind {
            Kind::List(_) => (None, v),
            _ => {
                let call = self.call_of(args, "egress", v, &["egress"])?;
                let a = self.bind(call, v.at)?;
                let list = a.get("allowlist")?;
                (Some(a), list)
            }
        };
        let a = owner_args.as_ref().unwrap_or(args);
        let param = if owner_args.is_some() {
            "allowlist"
        } else {
            "egress"
        };
        let Kind::List(items) = &list.kind else {
            self.type_err(a, param, list, "a list of mvm.host_port(...)");
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            out.push(self.host_port(a, param, item)?);
        }
        Some(out)
    }

    pub(super) fn dns(&mut self, args: &Args, v: &Value, ptr: &str) -> Option<Dns> {
        let call = self.call_of(args, "dns", v, &["dns_system", "dns_none", "dns_resolver"])?;
        self.span(ptr, v.at);
        let a = self.bind(call, v.at)?;
        match call.helper.as_str() {
            "dns_system" => Some(Dns::System),
            "dns_none" => Some(Dns::None),
            _ => {
                let host = self.req_str(&a, "host")?;
                self.span(child(ptr, "host"), a.get("host")?.at);
                let port = match a.get("port") {
                    Some(pv) => {
                        self.span(child(ptr, "port"), pv.at);
                        self.port_of(&a, "port", pv)?
                    }
                    None => tables::DNS_PORT,
                };
                Some(Dns::Resolver { host, port })
            }
        }
    }
}
