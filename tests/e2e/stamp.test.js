// The glass-to-glass stamp decoder against the contract (see stamp.js).
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { decodeStamp, encodeStamp } = require('./stamp');

test('decodes capture ms and sequence at the sizes the agent sends, including widths not divisible by 32', () => {
  const captureMs = 1795607623165; // Nov 2026: needs all of the 48 bits above the sequence
  for (const width of [640, 320, 176, 100, 32]) {
    for (const sequence of [0, 1, 0x7fff, 0xffff]) {
      assert.deepEqual(decodeStamp(encodeStamp(captureMs, sequence, width), width, 16), { captureMs, sequence }, `width ${width}`);
    }
  }
});

test('the sequence wraps at 16 bits and never spills into the capture time', () => {
  assert.deepEqual(decodeStamp(encodeStamp(1000, 0x1_0005, 640), 640, 16), { captureMs: 1000, sequence: 5 });
});

test('bit order: row 0 holds bits 63..32 with the most significant bit at the left', () => {
  const width = 64; // 2 px cells
  const rgba = new Uint8ClampedArray(width * 16 * 4); // all black = 0
  const white = (cell, row) => {
    for (let y = row * 8; y < row * 8 + 8; y++) {
      for (let x = cell * 2; x < cell * 2 + 2; x++) rgba.fill(255, (y * width + x) * 4, (y * width + x) * 4 + 4);
    }
  };
  white(31, 1); // bit 0 -> sequence 1
  white(15, 1); // bit 16 -> capture ms 1
  white(0, 0); // bit 63 -> capture ms 2^47
  assert.deepEqual(decodeStamp(rgba, width, 16), { captureMs: 2 ** 47 + 1, sequence: 1 });
});

test('mid-grey is read against the 128 luma threshold, and frames too small give null', () => {
  const width = 32;
  const grey = (v) => new Uint8ClampedArray(width * 16 * 4).fill(v);
  assert.deepEqual(decodeStamp(grey(127), width, 16), { captureMs: 0, sequence: 0 });
  assert.deepEqual(decodeStamp(grey(129), width, 16), { captureMs: 2 ** 48 - 1, sequence: 0xffff });
  assert.equal(decodeStamp(grey(0), 31, 16), null);
  assert.equal(decodeStamp(new Uint8ClampedArray(32 * 8 * 4), 32, 8), null);
});
