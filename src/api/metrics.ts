/**
 * Renders a MetricsSnapshot as Prometheus text exposition format 0.0.4. Pure: the API
 * calls it per scrape; every family gets HELP and TYPE lines, counters end in `_total`.
 */
import type { MetricsSnapshot, Readiness } from "./status.ts";

/** The Content-Type Prometheus expects for the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string>;
interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "summary";
  samples: { suffix?: string; labels?: Labels; value: number }[];
}

/** Extra context shown as gauges next to the counters. */
export interface MetricsContext {
  readiness?: Readiness;
  version?: string;
  node?: string;
}

/**
 * Formats the snapshot.
 * @example renderMetrics(source.metrics(), { readiness: source.readiness() })
 */
export function renderMetrics(m: MetricsSnapshot, ctx: MetricsContext = {}): string {
  const dir = (inV: number, outV: number) => [
    { labels: { direction: "in" }, value: inV },
    { labels: { direction: "out" }, value: outV },
  ];
  const families: Family[] = [
    {
      name: "weft_members",
      help: "Cluster members known to this node, by gossip state.",
      type: "gauge",
      samples: (["alive", "suspect", "dead", "left"] as const).map((s) => ({ labels: { state: s }, value: m.membersByState[s] })),
    },
    { name: "weft_leases", help: "Subnet leases in this node's lease table.", type: "gauge", samples: [{ value: m.leases }] },
    { name: "weft_gossip_packets_total", help: "Gossip UDP packets received and sent.", type: "counter", samples: dir(m.gossip.packetsIn, m.gossip.packetsOut) },
    { name: "weft_gossip_bytes_total", help: "Gossip bytes received and sent (UDP and TCP).", type: "counter", samples: dir(m.gossip.bytesIn, m.gossip.bytesOut) },
    { name: "weft_gossip_messages_total", help: "Gossip protocol messages received and sent.", type: "counter", samples: dir(m.gossip.messagesIn, m.gossip.messagesOut) },
    { name: "weft_gossip_decrypt_failures_total", help: "Gossip packets dropped because they failed authentication/decryption.", type: "counter", samples: [{ value: m.gossip.decryptFailures }] },
    { name: "weft_gossip_decode_failures_total", help: "Gossip payloads dropped because they could not be decoded.", type: "counter", samples: [{ value: m.gossip.decodeFailures }] },
    { name: "weft_gossip_duplicates_skipped_total", help: "Copies of gossip broadcasts already handled, dropped before decoding.", type: "counter", samples: [{ value: m.gossip.duplicatesSkipped }] },
    { name: "weft_gossip_replays_rejected_total", help: "Sealed gossip messages refused as replays (an id seen before, a time at or below the replay floor, a stream reply naming no request of ours).", type: "counter", samples: [{ value: m.gossip.replaysRejected }] },
    { name: "weft_gossip_stale_rejected_total", help: "Sealed gossip messages refused because their sent-at time lies outside the allowed clock skew.", type: "counter", samples: [{ value: m.gossip.staleRejected }] },
    { name: "weft_gossip_sender_mismatches_total", help: "Sealed gossip messages refused because the sender address sealed inside is not where they came from.", type: "counter", samples: [{ value: m.gossip.senderMismatches }] },
    { name: "weft_reconcile_runs_total", help: "Dataplane reconcile passes.", type: "counter", samples: [{ value: m.reconcile.runs }] },
    { name: "weft_reconcile_errors_total", help: "Dataplane reconcile passes that failed.", type: "counter", samples: [{ value: m.reconcile.errors }] },
    {
      name: "weft_reconcile_duration_seconds",
      help: "Time spent reconciling the dataplane.",
      type: "summary",
      samples: [
        { suffix: "_sum", value: m.reconcile.durationSecondsSum },
        { suffix: "_count", value: m.reconcile.runs },
      ],
    },
    { name: "weft_reconcile_last_duration_seconds", help: "Duration of the most recent reconcile pass.", type: "gauge", samples: [{ value: m.reconcile.lastDurationSeconds }] },
    { name: "weft_conflicts_resolved_total", help: "Lease conflicts resolved (a subnet claimed by two nodes).", type: "counter", samples: [{ value: m.conflictsResolved }] },
    { name: "weft_udp_packets_forwarded_total", help: "Packets forwarded by the udp backend.", type: "counter", samples: [{ value: m.udp.packetsForwarded }] },
    { name: "weft_udp_packets_dropped_total", help: "Packets dropped by the udp backend (no route, oversized, bad source).", type: "counter", samples: [{ value: m.udp.packetsDropped }] },
    {
      name: "weft_udp_packets_refused_total",
      help: "Of the udp backend's drops, datagrams refused as forged: inner source outside the sending peer's subnet, or an offload header that does not fit its packet.",
      type: "counter",
      samples: [
        { labels: { reason: "spoofed_source" }, value: m.udp.droppedSpoofedSource },
        { labels: { reason: "bad_offload_header" }, value: m.udp.droppedBadOffloadHeader },
      ],
    },
  ];
  if (m.wireguard) {
    families.push(
      { name: "weft_wireguard_peers", help: "Peers configured on weft's WireGuard devices (weft-wg, and weft-wg-v6 in Mode separate: a node counts once per device).", type: "gauge", samples: [{ value: m.wireguard.peers }] },
      { name: "weft_wireguard_bytes_total", help: "Bytes received (in) and sent (out) over WireGuard, summed over peers; kept across peer removals and device restarts.", type: "counter", samples: dir(m.wireguard.rxBytes, m.wireguard.txBytes) },
    );
  }
  if (m.clusterKeys) {
    families.push(
      { name: "weft_cluster_keys", help: "Keys in the cluster key file in use (every one opens gossip; the first seals).", type: "gauge", samples: [{ value: m.clusterKeys.count }] },
      { name: "weft_cluster_key_info", help: "Constant 1, labelled with the fingerprint (16 hex digits of SHA-256) of the key that seals gossip; never the key.", type: "gauge", samples: [{ labels: { primary: m.clusterKeys.primary }, value: 1 }] },
    );
  }
  if (ctx.readiness) {
    families.push({ name: "weft_ready", help: "1 once the lease is settled and the dataplane programmed.", type: "gauge", samples: [{ value: ctx.readiness.ready ? 1 : 0 }] });
  }
  if (ctx.version !== undefined || ctx.node !== undefined) {
    const labels: Labels = {};
    if (ctx.version !== undefined) labels.version = ctx.version;
    if (ctx.node !== undefined) labels.node = ctx.node;
    families.push({ name: "weft_build_info", help: "Constant 1, labelled with the agent's version and node name.", type: "gauge", samples: [{ labels, value: 1 }] });
  }
  return families.map(renderFamily).join("");
}

function renderFamily(f: Family): string {
  let out = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
  for (const s of f.samples) out += `${f.name}${s.suffix ?? ""}${renderLabels(s.labels)} ${formatNumber(s.value)}\n`;
  return out;
}

function renderLabels(labels?: Labels): string {
  if (!labels || Object.keys(labels).length === 0) return "";
  return `{${Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

/** Non-finite values have their own spelling in the format; garbage becomes NaN, not a broken line. */
export function formatNumber(v: number): string {
  if (typeof v !== "number" || Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

const escapeHelp = (s: string) => s.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
const escapeLabel = (s: string) => s.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
