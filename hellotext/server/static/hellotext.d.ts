// Type declarations for hellotext.js (a plain script defining `window.Hellotext`) and hellotext.mjs
// (the same SDK as an ES module whose default export is that object). Spec: browser-sdk.md.

export interface HellotextConfig {
  /** API root; default: the origin that served the script + "/v1". Trailing slashes are removed. */
  apiRoot?: string
  /** A session id chosen by the page; the `hello_session` URL parameter still wins. */
  session?: string
  /** Mint a session when none is found (default true). */
  autoGenerateSession?: boolean
  /** Accepted and ignored, for pages written for the official client. */
  forms?: unknown
  webchat?: unknown
  whatsappWidget?: unknown
  locale?: unknown
  actionCableUrl?: unknown
}

/** What `track` and `identify` resolve to. Network failures resolve a failed response, never reject. */
export interface HellotextResponse<T = any> {
  readonly succeeded: boolean
  readonly failed: boolean
  /** The parsed JSON answer (an error envelope when failed), or null. */
  readonly data: T | null
}

/** The `hello_utm` cookie, as given to `utm-set` listeners. */
export interface UtmParams {
  source: string
  medium: string
  campaign?: string
  term?: string
  content?: string
  observed_at: string
}

export interface UserParameters {
  id?: string | number
  source?: string
}

export interface TrackParams {
  /** Extra request headers; the SDK's own (Authorization, Accept, Content-Type) win. */
  headers?: Record<string, string>
  /** Default: the identity remembered by `identify`. */
  user_parameters?: UserParameters
  /** Default: location.href. */
  url?: string
  session?: string
  object?: string
  object_type?: string
  object_parameters?: Record<string, unknown>
  amount?: number
  currency?: string
  metadata?: Record<string, unknown>
  tracked_at?: number | string
  /** Idempotency key. */
  id?: string
  [key: string]: unknown
}

export interface IdentifyOptions {
  source?: string
  email?: string
  phone?: string
  name?: string
  /** Other keys are stored as traits. */
  [key: string]: unknown
}

export interface ForgetOptions {
  /** Also rotate the session (shared devices). */
  newSession?: boolean
}

export declare class NotInitializedError extends Error {
  name: 'NotInitializedError'
}

export declare class InvalidEvent extends Error {
  name: 'InvalidEvent'
}

export type HellotextEvent = 'session-set' | 'utm-set' | 'forms:collected' | 'form:completed'

export interface HellotextSDK {
  readonly version: string
  /** The current session, or undefined before `initialize` or when none was found. */
  readonly session: string | undefined
  /** `session !== undefined`. */
  readonly isInitialized: boolean
  readonly NotInitializedError: typeof NotInitializedError
  readonly InvalidEvent: typeof InvalidEvent

  /** Resolve the session and UTM parameters; makes no request. Rejects with TypeError on a bad id. */
  initialize(businessId: string, config?: HellotextConfig): Promise<void>
  /** POST /track/events; rejects with NotInitializedError before `initialize`. */
  track(action: string, params?: TrackParams): Promise<HellotextResponse>
  /** POST /public/identifications unless this exact identification was already sent. */
  identify(externalId: string | number, options?: IdentifyOptions): Promise<HellotextResponse>
  /** Delete the identity cookies; keeps the session unless `newSession`. No request. */
  forget(options?: ForgetOptions): void

  /** Throws InvalidEvent for an unknown name. */
  on(name: 'session-set', callback: (session: string) => void): void
  on(name: 'utm-set', callback: (utm: UtmParams) => void): void
  on(name: 'forms:collected' | 'form:completed', callback: (...args: any[]) => void): void
  removeEventListener(name: HellotextEvent, callback: (...args: any[]) => void): void
}

declare global {
  interface Window {
    Hellotext: HellotextSDK
  }
  const Hellotext: HellotextSDK
}

declare const sdk: HellotextSDK
export default sdk
