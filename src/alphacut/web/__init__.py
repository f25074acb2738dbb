"""The local web app: a page that cuts out images in the browser tab."""
