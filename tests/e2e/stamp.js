// Decoder for the glass-to-glass stamp the media crate's test pattern draws into each frame.
//
// Contract: the top 16 pixel rows are a barcode of 64 cells in 2 rows of 32; cell width =
// floor(videoWidth / 32), cell height 8 px; row 0 holds bits 63..32, row 1 bits 31..0, most
// significant bit at the left; white = 1, black = 0 (luma threshold 128, sampled at each cell's
// centre). value = (capture unix ms << 16) | (frame sequence & 0xFFFF).
//
// `decodeStamp` is self-contained (no closures, no requires) because browser.js ships its source
// into the page with page.evaluate; node tests call it directly.
'use strict';

/**
 * @param {Uint8ClampedArray|Uint8Array} rgba pixels of the top rows, RGBA, row-major
 * @param {number} width pixels per row (the video's width)
 * @param {number} height rows present in `rgba` (at least 16)
 * @returns {{captureMs: number, sequence: number} | null} null when the frame is too small
 */
function decodeStamp(rgba, width, height) {
  var CELLS_PER_ROW = 32;
  var CELL_HEIGHT = 8;
  var cellWidth = Math.floor(width / CELLS_PER_ROW);
  if (cellWidth < 1 || height < 2 * CELL_HEIGHT || rgba.length < width * height * 4) return null;
  var value = 0n;
  for (var row = 0; row < 2; row++) {
    var y = row * CELL_HEIGHT + Math.floor(CELL_HEIGHT / 2);
    for (var cell = 0; cell < CELLS_PER_ROW; cell++) {
      var x = cell * cellWidth + Math.floor(cellWidth / 2);
      var i = (y * width + x) * 4;
      // BT.601 luma, as the pattern's black/white cells are far from the threshold either way.
      var luma = 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
      value = (value << 1n) | (luma >= 128 ? 1n : 0n);
    }
  }
  return { captureMs: Number(value >> 16n), sequence: Number(value & 0xffffn) };
}

/**
 * Draws a stamp the way the media crate's test pattern does, into an RGBA buffer of
 * `width` x 16 pixels. For tests of the decoder only.
 */
function encodeStamp(captureMs, sequence, width) {
  var cellWidth = Math.floor(width / 32);
  var rgba = new Uint8ClampedArray(width * 16 * 4);
  var value = (BigInt(captureMs) << 16n) | BigInt(sequence & 0xffff);
  for (var bit = 0; bit < 64; bit++) {
    var on = ((value >> BigInt(63 - bit)) & 1n) === 1n;
    var row = Math.floor(bit / 32);
    var cell = bit % 32;
    for (var y = row * 8; y < row * 8 + 8; y++) {
      for (var x = cell * cellWidth; x < (cell + 1) * cellWidth; x++) {
        var i = (y * width + x) * 4;
        rgba[i] = rgba[i + 1] = rgba[i + 2] = on ? 235 : 16; // video-range white/black
        rgba[i + 3] = 255;
      }
    }
  }
  return rgba;
}

module.exports = { decodeStamp, encodeStamp };
