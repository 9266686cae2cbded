// SPDX-License-Identifier: MIT
// ES module entry point: the same objects as the CommonJS build (index.js),
// so classes are shared and `instanceof` works across import and require.
import mags from './index.js';

export const {
  Mags,
  Job,
  Files,
  MagsError,
  BadRequestError,
  AuthenticationError,
  NotFoundError,
  ConflictError,
  ServerError,
  MagsConnectionError,
  MagsTimeoutError,
  VERSION,
} = mags;
