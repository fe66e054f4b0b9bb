/**
 * The one error class of the public API, as in Wallaroo's Python API: thrown when an
 * application is declared wrongly. Its message always says what to fix.
 */
export class WallarooParameterError extends Error {
  constructor(message: string) {
    super(message);
    // Set explicitly: subclassing keeps the class's own name only when it is assigned.
    this.name = "WallarooParameterError";
  }
}
