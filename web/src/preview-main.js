// Entry of dist/preview.js, the preview's own bundle (markdown-it, DOMPurify): the
// note page loads it with a <script> once the editor is on screen (note-page.js,
// loadPreviewLib) and finds it here.
import { renderMarkdown, splitMarkdown } from './preview.js';

window.notesPreview = Object.freeze({ renderMarkdown, splitMarkdown });
