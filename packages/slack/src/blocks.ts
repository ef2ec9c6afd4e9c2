/** Block Kit, as much as the app renders. Builders are pure; Slack's size limits are applied where text is free-form. */

export interface PlainText {
  readonly type: 'plain_text'
  readonly text: string
  readonly emoji?: boolean
}
export interface Mrkdwn {
  readonly type: 'mrkdwn'
  readonly text: string
}
export type TextObject = PlainText | Mrkdwn

export interface SelectOption {
  readonly text: PlainText
  readonly value: string
}

/** A block or element: Block Kit's JSON, typed by its `type` and what the app reads back. */
export interface Block {
  readonly type: string
  readonly block_id?: string
  readonly [key: string]: unknown
}

export interface ModalView {
  readonly type: 'modal'
  readonly callback_id: string
  readonly title: PlainText
  readonly submit?: PlainText
  readonly close?: PlainText
  readonly private_metadata?: string
  readonly blocks: readonly Block[]
  readonly notify_on_close?: boolean
}

/** Slack's limits (saas-apis.md §7.3). */
export const LIMITS = {
  sectionText: 3000,
  fieldText: 2000,
  headerText: 150,
  optionText: 75,
  optionValue: 150,
  options: 100,
  modalTitle: 24,
  buttonText: 75,
  buttonValue: 2000,
  messageBlocks: 50,
  modalBlocks: 100,
  privateMetadata: 3000,
  label: 2000,
} as const

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`
}

export const plain = (text: string, max: number = LIMITS.sectionText): PlainText => ({ type: 'plain_text', text: truncate(text, max), emoji: true })
export const mrkdwn = (text: string, max: number = LIMITS.sectionText): Mrkdwn => ({ type: 'mrkdwn', text: truncate(text, max) })
export const option = (label: string, value: string): SelectOption => ({ text: plain(label, LIMITS.optionText), value: value.slice(0, LIMITS.optionValue) })

export const section = (text: string, blockId?: string): Block => ({ type: 'section', ...(blockId ? { block_id: blockId } : {}), text: mrkdwn(text) })
export const context = (text: string): Block => ({ type: 'context', elements: [mrkdwn(text)] })
export const header = (text: string): Block => ({ type: 'header', text: plain(text, LIMITS.headerText) })
export const divider = (): Block => ({ type: 'divider' })

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

export const mention = (slackUserId: string) => `<@${slackUserId}>`
