// Registers every built-in step. Import this module (the encoder does) before compiling a manifest.
import './steps-basic.js';
import './steps-text.js';
import './steps-image.js';
import './steps-audio.js';
