import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';

/**
 * Node's keep-alive agents drop a connection after each response when the server's
 * `Keep-Alive: timeout=N` hint is 1 s or less (Node keeps a 1 s margin). Orthanc 1.10 sends
 * `timeout=1`, so every STOW-RS request and every WADO-RS retrieve opened a new TCP connection
 * (measured: 261 connections for 261 requests). These agents keep such a connection for half
 * the announced time instead. A request that still meets a connection the server has just
 * closed fails before any answer, and httpRequest() sends it once more on a new one.
 */
function keepShortHinted(socket: Socket, kept: boolean): boolean {
  if (kept) return true;
  const res = (socket as Socket & { _httpMessage?: { res?: http.IncomingMessage } })._httpMessage?.res;
  const hint = /^timeout=(\d+)/.exec(String(res?.headers['keep-alive'] ?? ''))?.[1];
  const seconds = hint === undefined ? NaN : Number(hint);
  if (!(seconds > 0)) return false; // not a short hint: Node's reason stands
  socket.setTimeout(seconds * 500);
  return true;
}

export class KeepAliveAgent extends http.Agent {
  constructor(options: http.AgentOptions) {
    super({ ...options, keepAlive: true });
  }

  override keepSocketAlive(socket: Socket): boolean {
    // @types/node types it void; Node's agent uses the boolean it returns (false: destroy).
    return keepShortHinted(socket, super.keepSocketAlive(socket) as unknown as boolean);
  }
}

export class KeepAliveHttpsAgent extends https.Agent {
  constructor(options: https.AgentOptions) {
    super({ ...options, keepAlive: true });
  }

  override keepSocketAlive(socket: Socket): boolean {
    // @types/node types it void; Node's agent uses the boolean it returns (false: destroy).
    return keepShortHinted(socket, super.keepSocketAlive(socket) as unknown as boolean);
  }
}
