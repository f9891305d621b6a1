import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Who a client is (DESIGN §7): a bearer token from a configured list, or a short-lived ticket signed
 * with HMAC-SHA256 that a backend hands to a browser (so a long-lived token never reaches page code).
 * A ticket is `base64url(JSON {sub, exp, bots?}).base64url(HMAC(secret, first part))`.
 */
export interface Principal {
  /** The user or client the connection acts for; becomes the `chatuser` of its messages. */
  id: string;
  /** Bots the principal may talk to; undefined for any. */
  bots?: readonly string[];
}

export interface AuthOptions {
  /** Bearer tokens and who they stand for. */
  tokens?: ReadonlyMap<string, Principal>;
  /** The HMAC key tickets are signed with; no tickets without it. */
  ticketSecret?: string;
  /** No credentials asked: every client is `anonymous` (local mode on loopback). */
  open?: boolean;
}

export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

/** Longest ticket lifetime accepted, whatever its `exp` says. */
export const MAX_TICKET_SECONDS = 3600;

export class Authenticator {
  readonly #tokens: ReadonlyMap<string, Principal>;
  readonly #secret: Buffer | undefined;
  readonly #open: boolean;

  constructor(options: AuthOptions) {
    this.#tokens = options.tokens ?? new Map();
    this.#secret = options.ticketSecret ? Buffer.from(options.ticketSecret, 'utf8') : undefined;
    this.#open = options.open ?? false;
    if (!this.#open && this.#tokens.size === 0 && !this.#secret) throw new Error('the gateway needs tokens or a ticket secret unless it is open (local mode)');
  }

  /** True when no credential is needed. */
  get open(): boolean {
    return this.#open;
  }

  get issuesTickets(): boolean {
    return this.#secret !== undefined;
  }

  /** The principal a credential (a token or a ticket) stands for; throws AuthError. */
  verify(credential: string | undefined, nowMs = Date.now()): Principal {
    if (credential === undefined || credential === '') {
      if (this.#open) return { id: 'anonymous' };
      throw new AuthError('credentials required: a bearer token or a ticket');
    }
    const token = this.#token(credential);
    if (token) return token;
    if (this.#secret && credential.includes('.')) return this.#ticket(credential, nowMs);
    if (this.#open) return { id: 'anonymous' };
    throw new AuthError('the token is not valid');
  }

  /** A ticket for `principal`, valid `ttlSeconds` (at most MAX_TICKET_SECONDS). */
  issue(principal: Principal, ttlSeconds: number, nowMs = Date.now()): { ticket: string; expiresAt: string } {
    if (!this.#secret) throw new Error('no ticket secret is configured');
    const exp = Math.floor(nowMs / 1000) + Math.min(Math.max(1, Math.floor(ttlSeconds)), MAX_TICKET_SECONDS);
    const payload = Buffer.from(JSON.stringify({ sub: principal.id, exp, ...(principal.bots ? { bots: principal.bots } : {}) })).toString('base64url');
    return { ticket: `${payload}.${this.#sign(payload)}`, expiresAt: new Date(exp * 1000).toISOString() };
  }

  #token(credential: string): Principal | undefined {
    // Compare against every token so the time taken does not say which one nearly matched.
    const given = Buffer.from(credential, 'utf8');
    let found: Principal | undefined;
    for (const [token, principal] of this.#tokens) {
      const want = Buffer.from(token, 'utf8');
      if (want.length === given.length && timingSafeEqual(want, given)) found = principal;
    }
    return found;
  }

  #ticket(ticket: string, nowMs: number): Principal {
    const dot = ticket.indexOf('.');
    const payload = ticket.slice(0, dot);
    const given = Buffer.from(ticket.slice(dot + 1), 'base64url');
    const want = Buffer.from(this.#sign(payload), 'base64url');
    if (given.length !== want.length || !timingSafeEqual(given, want)) throw new AuthError('the ticket signature is not valid');
    let claims: { sub?: unknown; exp?: unknown; bots?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw new AuthError('the ticket is malformed');
    }
    if (typeof claims.sub !== 'string' || claims.sub === '' || typeof claims.exp !== 'number') throw new AuthError('the ticket is malformed');
    if (claims.exp * 1000 <= nowMs) throw new AuthError('the ticket has expired');
    if (claims.exp * 1000 > nowMs + (MAX_TICKET_SECONDS + 60) * 1000) throw new AuthError('the ticket lives too long');
    const bots = Array.isArray(claims.bots) && claims.bots.every((b) => typeof b === 'string') ? (claims.bots as string[]) : undefined;
    return bots ? { id: claims.sub, bots } : { id: claims.sub };
  }

  #sign(payload: string): string {
    return createHmac('sha256', this.#secret!).update(payload).digest('base64url');
  }
}

/** The token of an `Authorization: Bearer <token>` header, if that is what it is. */
function bearerOf(authorization: string | undefined): string | undefined {
  return (authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null)?.[1];
}

/** The credential of an HTTP request: `Authorization: Bearer`, else `?token=` or `?ticket=`. */
export function credentialOf(authorization: string | undefined, query: URLSearchParams): string | undefined {
  return bearerOf(authorization) ?? query.get('ticket') ?? query.get('token') ?? undefined;
}

/**
 * Whether `authorization` is `Bearer <token>`: the header only (a query string ends up in access logs),
 * compared in time that does not depend on where it differs.
 */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const given = bearerOf(authorization);
  if (given === undefined) return false;
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(token).digest());
}

/** `KNBOT_GATEWAY_TOKENS`: `token=principal` pairs, comma-separated (a bare token stands for `client`). */
export function parseTokens(value: string | undefined): Map<string, Principal> {
  const tokens = new Map<string, Principal>();
  for (const part of (value ?? '').split(',')) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    tokens.set(eq < 0 ? item : item.slice(0, eq), { id: eq < 0 ? 'client' : item.slice(eq + 1) });
  }
  return tokens;
}
