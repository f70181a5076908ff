package org.apache.pdfbox.pdmodel.font;
public class PDFont {}
