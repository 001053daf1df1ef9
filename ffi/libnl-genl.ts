/**
 * Raw dlopen symbol tables for WireGuard's control paths: libnl-genl-3 (Debian package
 * libnl-genl-3-200) to open a generic netlink socket and resolve the "wireguard" family,
 * the few libnl-3 calls that move prepared message bytes over that socket, and the
 * libnl-route-3 setter that names a link kind libnl has no type of its own for. Only
 * signatures; the safe wrapper is src/sys/wireguard-genl.ts (it frees the buffers nl_recv
 * allocates with libc's free(), ffi/libc.ts). The rest of libnl-3/libnl-route-3 comes
 * from ffi/libnl.ts.
 * Opened lazily, once per process, so importing this file never fails.
 */
import { dlopen, type FFIFunction } from "bun:ffi";
import { LIBNL_PATH, LIBNL_ROUTE_PATH, type Narrowed } from "./libnl.ts";

export const LIBNL_GENL_PATH = process.env.WEFT_LIBNL_GENL ?? "libnl-genl-3.so.200";

export const LIBNL_GENL_SYMBOLS = {
  // = nl_connect(sk, NETLINK_GENERIC)
  genl_connect: { args: ["ptr"], returns: "i32" },
  // family id (> 0) or a negative libnl error (-NLE_OBJ_NOTFOUND when no such family)
  genl_ctrl_resolve: { args: ["ptr", "ptr"], returns: "i32" },
} as const;

export const LIBNL_TRANSFER_SYMBOLS = {
  // Sends `len` bytes as they are to the socket's peer (the kernel); returns bytes sent or -NLE_*.
  nl_sendto: { args: ["ptr", "ptr", "u64"], returns: "i32" },
  // Receives one datagram into a buffer it mallocs (*buf; free it); returns its length, 0 or -NLE_*.
  nl_recv: { args: ["ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  // Peek first so a dump message larger than a page is received whole, not truncated.
  nl_socket_enable_msg_peek: { args: ["ptr"], returns: "void" },
} as const;

export const LIBNL_LINK_KIND_SYMBOLS = {
  // Sets IFLA_INFO_KIND; works for kinds libnl has no ops for ("wireguard"). Returns 0 or -NLE_*.
  rtnl_link_set_type: { args: ["ptr", "ptr"], returns: "i32" },
} as const;

type Loaded<S extends Record<string, FFIFunction>> = Narrowed<ReturnType<typeof dlopen<S>>["symbols"]>;

export interface LibnlGenlLibraries {
  genl: Loaded<typeof LIBNL_GENL_SYMBOLS>;
  transfer: Loaded<typeof LIBNL_TRANSFER_SYMBOLS>;
  linkKind: Loaded<typeof LIBNL_LINK_KIND_SYMBOLS>;
}

let loaded: LibnlGenlLibraries | undefined;

/** Opens the tables once per process; throws naming the library that failed. */
export function loadLibnlGenl(): LibnlGenlLibraries {
  if (loaded) return loaded;
  const open = <S extends Record<string, FFIFunction>>(path: string, syms: S, pkg: string) => {
    try {
      return dlopen(path, syms).symbols as unknown as Loaded<S>;
    } catch (e) {
      throw new Error(`load ${path}: ${(e as Error).message} (install ${pkg})`, { cause: e });
    }
  };
  loaded = {
    genl: open(LIBNL_GENL_PATH, LIBNL_GENL_SYMBOLS, "libnl-genl-3-200"),
    transfer: open(LIBNL_PATH, LIBNL_TRANSFER_SYMBOLS, "libnl-3-200"),
    linkKind: open(LIBNL_ROUTE_PATH, LIBNL_LINK_KIND_SYMBOLS, "libnl-route-3-200"),
  };
  return loaded;
}
