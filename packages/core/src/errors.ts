// Errors raised by the pure contract code. The server maps them onto its problem+json catalogue.

/** A manifest (or a step composition inside it) that cannot be used; `path` is a JSON pointer into the manifest. */
export class ContractError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path || '/'}: ${message}`);
    this.name = 'ContractError';
    this.path = path;
  }
}

/** One bad field of a request, as reported to the caller. */
export interface FieldIssue {
  /** JSON pointer of the bad field inside the request body. */
  pointer: string;
  reason: string;
}

/** A request that does not satisfy the contract. */
export class InputError extends Error {
  readonly issues: FieldIssue[];
  constructor(issues: FieldIssue[]) {
    super(issues.map((i) => `${i.pointer}: ${i.reason}`).join('; '));
    this.name = 'InputError';
    this.issues = issues;
  }
}
